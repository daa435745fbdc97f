// herald: the command line of Herald's HTTP API, one command per call of the sender API
// (/v1/apps/{app}/...) and the admin API (/v1/admin/...). `herald --help` lists them; docs/cli.md
// is the guide. The work is in cli/: run.h is the whole flow, command.h what a command is.
//
// Exit status: 0 success, 1 the server refused or could not be reached, 2 bad usage.
#include <iostream>
#include <string_view>
#include <vector>

#include "cli/run.h"
#include "cli/settings.h"

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const int status =
      herald::cli::run(args, herald::cli::process_environment(), std::cout, std::cerr);
  std::cout.flush();
  return std::cout ? status : herald::cli::kExitFailed;
}
