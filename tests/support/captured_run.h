// run_captured(): runs a program to completion, as a shell would, and hands back its exit status
// and everything it wrote. For testing command-line tools (the herald CLI) as their users run
// them: a real process, its own environment, stdin empty.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace herald::testing {

struct CapturedRun {
  int exit_code = -1;  // the exit status; -1 when killed by a signal or by the timeout
  bool timed_out = false;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr
};

// Runs argv[0] (a path) with `argv` and exactly the environment `env` ("NAME=value" each; no
// other variable is inherited, so the caller's HOME or HERALD_* never leak in), stdin at
// /dev/null. Reads stdout and stderr until both close, then reaps the child. A child still running
// after `timeout` is killed (SIGKILL): timed_out. Throws std::runtime_error when it cannot start.
CapturedRun run_captured(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace herald::testing
