#!/usr/bin/env node
'use strict';
require('./launch').launch('tortie-cni-server', 'cni/server');
