// Table: rows of text cells printed in aligned columns two spaces apart, for people. A header is
// just the first row (upper case by convention: DEVICE  SEQ  ONLINE); a table without one is a
// list of "name  value" fields. The last cell of a line is not padded, so no line ends in blanks,
// and cells are made printable first (a control character in a label cannot break the layout).
//
//   DEVICE   EPOCH  SEQ  ONLINE
//   phone-1  1      7    yes
//   tab-22   1      3    no
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace herald::cli {

class Table {
 public:
  void add_row(std::vector<std::string> cells);
  [[nodiscard]] bool empty() const { return rows_.empty(); }
  // Writes every row. Widths count UTF-8 characters, not bytes.
  void write(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `text` with each control character replaced by an escape (\n, \t, \x1b), so that one cell is
// one line of plain text.
[[nodiscard]] std::string printable(std::string_view text);

}  // namespace herald::cli
