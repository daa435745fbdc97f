#include "cli/help.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace herald::cli {

namespace {

constexpr std::size_t kWidth = 100;

// `text` broken into lines of at most kWidth columns at its spaces; with `keep_groups` (a
// synopsis) only at those outside brackets, so that "[--ttl SECONDS]" stays whole. The first line
// follows `first` (a space between them), the others start with `indent` spaces.
std::string wrap(std::string_view first, std::string_view text, std::size_t indent,
                 bool keep_groups = false) {
  std::vector<std::string_view> pieces;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ' ';
    if (keep_groups && (c == '[' || c == '(')) ++depth;
    if (keep_groups && (c == ']' || c == ')')) --depth;
    if (c == ' ' && depth <= 0) {
      if (i > start) pieces.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string out(first);
  std::size_t column = first.size();
  bool need_space = !first.empty() && first.back() != ' ';
  bool line_empty = true;  // no piece on this line yet
  for (const auto piece : pieces) {
    if (!line_empty && column + 1 + piece.size() > kWidth) {
      out += '\n';
      out.append(indent, ' ');
      column = indent;
      need_space = false;
    }
    if (need_space) {
      out += ' ';
      ++column;
    }
    out += piece;
    column += piece.size();
    need_space = true;
    line_empty = false;
  }
  return out;
}

std::string flag_usage(const FlagSpec& f) {
  std::string text = "--" + std::string(f.name);
  if (!f.value_name.empty()) text += " " + std::string(f.value_name);
  if (f.name == "help") text = "-h, --help";
  return text;
}

void write_flags(const std::vector<const FlagSpec*>& flags, std::ostream& out) {
  std::size_t width = 0;
  for (const FlagSpec* f : flags) width = std::max(width, flag_usage(*f).size());
  for (const FlagSpec* f : flags) {
    std::string head = "  " + flag_usage(*f);
    head.append(width + 4 - head.size(), ' ');
    out << wrap(head, f->help, width + 4) << '\n';
  }
}

std::vector<const FlagSpec*> global_flags() {
  std::vector<const FlagSpec*> flags;
  for (const FlagSpec& f : all_flags()) {
    if (f.global) flags.push_back(&f);
  }
  return flags;
}

void write_entry(const Command& c, std::ostream& out) {
  out << wrap("  " + c.name(), c.synopsis, 3 + c.name().size(), true) << '\n';
  out << wrap("      ", c.summary, 6) << '\n';
}

constexpr std::string_view kSettings =
    "Settings come from the flag, else the environment variable, else the config file: "
    "--config FILE, else $HERALD_CONFIG, else $XDG_CONFIG_HOME/herald/cli.toml, else "
    "~/.config/herald/cli.toml, holding TOML string keys server, api_key, admin_token, ca_file "
    "and tls_server_name. Over https the server's certificate must be signed by a CA of the CA "
    "file and carry the TLS server name (the URL's host unless set).";

constexpr std::string_view kOutput =
    "Answers print as tables; with --json, as the server's JSON body, exactly. Errors print the "
    "server's error code and message on stderr.";

constexpr std::string_view kExitStatus =
    "exit status: 0 success, 1 refused by the server or unreachable, 2 bad usage";

}  // namespace

void write_help(std::ostream& out) {
  out << "usage: herald [GLOBAL OPTIONS] COMMAND [OPTIONS]\n\n"
      << wrap("", "The command line of Herald's HTTP API (docs/cli.md): one command per call.", 0)
      << "\n";
  struct Group {
    Credential credential;
    std::string_view title;
  };
  constexpr std::array kGroups = {
      Group{Credential::kApiKey, "Sender commands (with an app's API key):"},
      Group{Credential::kAdminToken, "Admin commands (with the admin token):"},
      Group{Credential::kNone, "Other commands:"},
  };
  for (const Group& g : kGroups) {
    out << '\n' << g.title << '\n';
    for (const Command& c : commands()) {
      if (c.credential == g.credential) write_entry(c, out);
    }
  }
  out << "\nGlobal options (before or after the command):\n";
  write_flags(global_flags(), out);
  out << '\n'
      << wrap("", kSettings, 0) << "\n\n"
      << wrap("", kOutput, 0) << "\n\n"
      << kExitStatus << "\nRun 'herald COMMAND --help' for a command's options.\n";
}

void write_command_help(const Command& c, std::ostream& out) {
  const std::string first = "usage: herald " + c.name();
  const std::string about = c.details.empty()
                                ? std::string(c.summary)
                                : std::string(c.summary) + " " + std::string(c.details);
  out << wrap(first, c.synopsis, first.size() + 1, true) << "\n\n" << wrap("", about, 0) << '\n';
  const std::string_view secret = c.credential == Credential::kApiKey ? " with an API key"
                                  : c.credential == Credential::kAdminToken
                                      ? " with the admin token"
                                      : "";
  out << "\nCalls " << c.route << secret << ".\n";
  std::vector<const FlagSpec*> flags;
  for (const auto name : c.flags) flags.push_back(find_flag(name));
  if (!flags.empty()) {
    out << "\noptions:\n";
    write_flags(flags, out);
  }
  out << "\nglobal options:\n";
  write_flags(global_flags(), out);
  out << '\n' << kExitStatus << '\n';
}

void write_group_help(const std::vector<std::string>& prefix, std::ostream& out) {
  std::string name;
  for (const auto& w : prefix) name += (name.empty() ? "" : " ") + w;
  out << "usage: herald " << name << " COMMAND [OPTIONS]\n\ncommands:\n";
  for (const Command& c : commands()) {
    if (c.words.size() >= prefix.size() &&
        std::equal(prefix.begin(), prefix.end(), c.words.begin())) {
      write_entry(c, out);
    }
  }
  out << "\nRun 'herald COMMAND --help' for a command's options, 'herald --help' for the global "
         "ones.\n";
}

}  // namespace herald::cli
