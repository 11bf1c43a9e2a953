#!/usr/bin/env node
'use strict';
require('./launch').launch('tortie', 'cni/plugin', { cniVersion: true });
