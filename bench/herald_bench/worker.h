// A herald-bench worker: one process holding a share of the run's subscribers of one system
// (Herald devices through the real client library, or a peer's subscribers through its protocol
// driver), so that a run holds more connections than one process may open files. The
// coordinator starts it as `herald-bench --worker ...` and drives it by lines on its stdin; it
// answers on its stdout (see worker.cc for the conversation).
#pragma once

namespace herald::bench {

// Runs the worker; argv[0] is "--worker", its flags follow. Returns the exit status.
int worker_main(int argc, char** argv);

}  // namespace herald::bench
