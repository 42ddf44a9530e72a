// GNU OpenMP reads its settings once, when libgomp is loaded with this addon. Its default waiting
// policy spins, which on a shared 2-core machine made two threads up to 9x slower than one
// (research/backends.md section 8): wait passively unless the user chose otherwise.
if (process.env.OMP_WAIT_POLICY === undefined) process.env.OMP_WAIT_POLICY = 'passive';
module.exports = require('./build/Release/longner_native.node');
