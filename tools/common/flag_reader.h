// The command lines of the small tools (herald-natsim, herald-hbsim): flags written `--name=value`
// or `--name value`, numbers checked against a range, and a UsageError naming what is wrong (the
// tools print it with their usage and exit 2).
//
//   herald::tools::FlagReader flags(argc, argv);
//   while (flags.next()) {
//     if (flags.flag() == "--rounds") rounds = parse_number<int>(flags.flag(), flags.value(), 1,
//     99); else if (flags.flag() == "--json" && !flags.has_inline_value()) json = true; else throw
//     UsageError("unknown argument \"" + std::string(flags.argument()) + "\"");
//   }
#pragma once

#include <charconv>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace herald::tools {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The whole of `text` as a number in [min, max], or nothing.
template <class N>
std::optional<N> to_number(std::string_view text, N min, N max) {
  N value{};
  const char* const last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(text.data(), last, value);
  if (ec != std::errc() || end != last || value < min || value > max) return std::nullopt;
  return value;
}

// The value `text` of `flag` as a number in [min, max]; UsageError otherwise.
template <class N>
N parse_number(std::string_view flag, std::string_view text, N min, N max) {
  if (const auto value = to_number(text, min, max)) return *value;
  throw UsageError(std::string(flag) + ": expected a number in " + std::to_string(min) + ".." +
                   std::to_string(max) + ", got \"" + std::string(text) + "\"");
}

// Walks argv (argv[0] is the program) one flag at a time.
class FlagReader {
 public:
  FlagReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next argument; false past the last one.
  bool next() {
    index_ = next_index_++;
    if (index_ >= argc_) return false;
    flag_ = argv_[index_];
    has_inline_value_ = false;
    if (const auto eq = flag_.find('='); eq != std::string_view::npos) {
      inline_value_ = flag_.substr(eq + 1);
      has_inline_value_ = true;
      flag_ = flag_.substr(0, eq);
    }
    return true;
  }

  // The flag's name, without an `=value`.
  [[nodiscard]] std::string_view flag() const { return flag_; }
  // The argument as given, for messages.
  [[nodiscard]] std::string_view argument() const { return argv_[index_]; }
  // True when the flag was written `--name=value`: a flag that takes no value is then misused.
  [[nodiscard]] bool has_inline_value() const { return has_inline_value_; }
  // The flag's value: after its '=', else the next argument (which is then consumed).
  std::string_view value() {
    if (has_inline_value_) return inline_value_;
    if (next_index_ >= argc_) throw UsageError(std::string(flag_) + " needs a value");
    return argv_[next_index_++];
  }

 private:
  int argc_;
  char** argv_;
  int index_ = 0;       // the current flag's argument
  int next_index_ = 1;  // the argument after it (and after its value, once taken)
  std::string_view flag_;
  // Not a std::optional<std::string_view>: GCC 12 reports it maybe-uninitialized wherever a
  // reader is inlined into a larger function.
  std::string_view inline_value_;
  bool has_inline_value_ = false;
};

}  // namespace herald::tools
