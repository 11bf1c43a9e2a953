#!/usr/bin/env -S node --max-semi-space-size=8
'use strict';
require('./launch').launch('tortie-node', 'node/main');
