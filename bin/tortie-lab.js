#!/usr/bin/env node
'use strict';
require('./launch').launch('tortie-lab', 'lab/main', { exit: true });
