package listen

// OpenLocalOnly lets tests run local-only mode on a free port instead of
// 1883, which other tests on the machine may be using.
var OpenLocalOnly = openLocalOnly
