// run(): all of `herald` but main()'s process plumbing. Parses the arguments, prints help, finds
// the command, checks its flags, resolves the settings (cli/settings.h), sends the one request
// and prints the answer:
//
//   2xx        for people, the command's rendering on `out`; with --json the server's body
//              exactly, then a newline (a replayed Idempotency-Key answer also says so on
//              `err`)                                                                  -> 0
//   non-2xx    "herald: <code>: <message> (HTTP <status>)" on `err`; with --json the server's
//              body on `out` as well, so that scripts can read it                      -> 1
//   no answer  "herald: cannot reach <server>: <reason>" on `err`                     -> 1
//   bad usage  the mistake and a pointer to --help on `err`, nothing sent              -> 2
//
// Usage is checked before anything is sent: a usage error never reaches the server.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

#include "cli/settings.h"

namespace herald::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// `args` are the arguments after the program name. Never throws for any arguments or answer.
[[nodiscard]] int run(std::span<const std::string_view> args, const Getenv& getenv,
                      std::ostream& out, std::ostream& err);

}  // namespace herald::cli
