#!/usr/bin/env node
'use strict';
require('./launch').launch('tortie-ipam', 'cni/ipam-plugin', { cniVersion: true });
