// The text of `herald --help`, `herald COMMAND --help` and `herald GROUP --help` ("herald admin
// --help" lists the admin commands). Generated from the commands (cli/command.h) and the flags
// (cli/args.h), so that help never lists a command or flag that does not exist, nor misses one.
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "cli/command.h"

namespace herald::cli {

// Every command, the global flags, where settings come from, the exit statuses.
void write_help(std::ostream& out);
// One command: its usage, what it does, the route it calls, each flag it takes.
void write_command_help(const Command& command, std::ostream& out);
// The commands whose words start with `prefix`.
void write_group_help(const std::vector<std::string>& prefix, std::ostream& out);

}  // namespace herald::cli
