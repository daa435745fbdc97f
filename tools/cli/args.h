// Args: the command line of `herald`, split into the command's words ("admin", "app", "create")
// and its flags, which may stand anywhere, as "--flag value" or "--flag=value". Args knows every
// flag herald has (all_flags()) but not which command takes which: the dispatcher checks that
// against the command's list (cli/command.h), so that a flag a command would ignore is refused
// rather than silently dropped.
//
// Every problem is a UsageError: the message names the flag and what was wrong with it, and
// herald exits with status 2.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace herald::cli {

// A mistake on the command line or in the config file; herald prints it and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FlagSpec {
  std::string_view name;        // without the leading "--"
  std::string_view value_name;  // "APP", "SECONDS"; empty for a switch, which takes no value
  bool repeatable = false;      // may be given more than once (--device)
  bool global = false;          // taken by every command
  std::string_view help;
};

// Every flag herald knows, the global ones first.
[[nodiscard]] std::span<const FlagSpec> all_flags();
// The flag called `name` (without "--"), or null.
[[nodiscard]] const FlagSpec* find_flag(std::string_view name);

class Args {
 public:
  // Parses the arguments after the program name. Throws UsageError for an unknown flag, a
  // missing or unexpected value, or a non-repeatable flag given twice. "-h" is "--help".
  [[nodiscard]] static Args parse(std::span<const std::string_view> args);

  // The words that are not flags or their values, in order: the command.
  [[nodiscard]] const std::vector<std::string>& words() const { return words_; }
  // The words joined by spaces ("alias set"), for messages.
  [[nodiscard]] std::string command() const;
  [[nodiscard]] bool help() const { return has("help"); }

  // Whether flag `name` (without "--") was given.
  [[nodiscard]] bool has(std::string_view name) const;
  // The names of the flags given, each once, in name order.
  [[nodiscard]] std::vector<std::string> given() const;
  // The value of a non-repeatable flag, or nullopt.
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
  // Every value of a repeatable flag, in order.
  [[nodiscard]] std::vector<std::string> all(std::string_view name) const;
  // The value of flag `name`; throws UsageError "<command> needs --name VALUE" without it.
  [[nodiscard]] std::string required(std::string_view name) const;
  // The value as an integer >= `min`; nullopt when not given; UsageError when not one.
  [[nodiscard]] std::optional<std::int64_t> integer(std::string_view name,
                                                    std::int64_t min = 0) const;
  // The value as a finite number >= 0 (a rate); nullopt when not given; UsageError when not one.
  [[nodiscard]] std::optional<double> rate(std::string_view name) const;

 private:
  std::vector<std::string> words_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

}  // namespace herald::cli
