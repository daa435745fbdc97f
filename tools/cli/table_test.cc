#include "cli/table.h"

#include <sstream>

#include <gtest/gtest.h>

namespace herald::cli {
namespace {

std::string written(const Table& t) {
  std::ostringstream out;
  t.write(out);
  return out.str();
}

TEST(Table, AlignsColumnsTwoSpacesApartWithoutTrailingBlanks) {
  Table t;
  t.add_row({"DEVICE", "SEQ", "ONLINE"});
  t.add_row({"phone-1", "12", "yes"});
  EXPECT_EQ(written(t), "DEVICE   SEQ  ONLINE\nphone-1  12   yes\n");
}

TEST(Table, CountsUtf8CharactersNotBytes) {
  Table t;
  t.add_row({"\xc3\xa9t\xc3\xa9", "x"});
  t.add_row({"abcd", "y"});
  EXPECT_EQ(written(t), "\xc3\xa9t\xc3\xa9   x\nabcd  y\n");
}

TEST(Table, EscapesControlCharactersSoARowStaysOneLine) {
  Table t;
  t.add_row({"a\nb\tc\x1b[31m"});
  EXPECT_EQ(written(t), "a\\nb\\tc\\x1b[31m\n");
}

}  // namespace
}  // namespace herald::cli
