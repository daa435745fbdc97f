#include <sys/stat.h>

#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "herald/client.h"
#include "test_dir.h"

namespace herald {
namespace {

using ::testing::HasSubstr;
using testing::read_file;
using testing::TestDir;
using testing::write_file;
using Cursor = CursorStore::Cursor;

ino_t inode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

TEST(FileCursorStore, MissingFileMeansNoCursors) {
  TestDir dir;
  auto store = make_file_cursor_store(dir / "cursors");
  EXPECT_EQ(store->load(0), (Cursor{0, 0}));
  EXPECT_FALSE(std::filesystem::exists(dir / "cursors"));
}

TEST(FileCursorStore, SavedCursorsSurviveAReload) {
  TestDir dir;
  {
    auto store = make_file_cursor_store(dir / "cursors");
    store->save(0, {3, 41});
    store->save(77, {1, 5});
    store->save(0, {3, 42});
    EXPECT_EQ(store->load(0), (Cursor{3, 42}));
  }
  auto reloaded = make_file_cursor_store(dir / "cursors");
  EXPECT_EQ(reloaded->load(0), (Cursor{3, 42}));
  EXPECT_EQ(reloaded->load(77), (Cursor{1, 5}));
  EXPECT_EQ(reloaded->load(5), (Cursor{0, 0}));
  EXPECT_EQ(read_file(dir / "cursors"), "herald-cursors 1\n0 3 42\n77 1 5\n");
}

TEST(FileCursorStore, SaveReplacesTheFileByRenameAndLeavesNoTemporary) {
  TestDir dir;
  auto store = make_file_cursor_store(dir / "cursors");
  store->save(0, {1, 1});
  const ino_t first = inode_of(dir / "cursors");
  store->save(0, {1, 2});
  // A new inode: the old file was never rewritten in place, so a crash leaves old or new.
  EXPECT_NE(inode_of(dir / "cursors"), first);
  EXPECT_FALSE(std::filesystem::exists(dir / "cursors.tmp"));
}

TEST(FileCursorStore, TemporaryLeftByACrashIsIgnoredAndOverwritten) {
  TestDir dir;
  write_file(dir / "cursors", "herald-cursors 1\n0 2 9\n");
  write_file(dir / "cursors.tmp", "herald-cursors 1\n0 2 1");  // torn, never renamed
  auto store = make_file_cursor_store(dir / "cursors");
  EXPECT_EQ(store->load(0), (Cursor{2, 9}));
  store->save(0, {2, 10});
  EXPECT_EQ(make_file_cursor_store(dir / "cursors")->load(0), (Cursor{2, 10}));
  EXPECT_FALSE(std::filesystem::exists(dir / "cursors.tmp"));
}

class CorruptCursorFile : public ::testing::TestWithParam<std::string> {};

TEST_P(CorruptCursorFile, IsAnErrorNamingThePath) {
  TestDir dir;
  write_file(dir / "cursors", GetParam());
  try {
    (void)make_file_cursor_store(dir / "cursors");
    FAIL() << "no error for " << GetParam();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir / "cursors").string()));
  }
}

INSTANTIATE_TEST_SUITE_P(FileCursorStore, CorruptCursorFile,
                         ::testing::Values("",                                  // emptied
                                           "garbage\n",                         // no header
                                           "herald-cursors 2\n",                // unknown version
                                           "herald-cursors 1\n0 1 2",           // torn
                                           "herald-cursors 1\n0 1\n",           // short line
                                           "herald-cursors 1\n0 1 2 3\n",       // long line
                                           "herald-cursors 1\n0 x 2\n",         // not a number
                                           "herald-cursors 1\n0 1 -2\n",        // negative
                                           "herald-cursors 1\n0  1 2\n",        // empty field
                                           "herald-cursors 1\n0 1 2\n0 1 3\n",  // twice
                                           "herald-cursors 1\n0 1 99999999999999999999\n"));

TEST(FileCursorStore, UnreadableDirectoryFailsSave) {
  TestDir dir;
  auto store = make_file_cursor_store(dir / "missing-dir" / "cursors");
  EXPECT_THROW(store->save(0, {1, 1}), std::system_error);
}

TEST(MemoryCursorStore, RemembersSavedCursors) {
  auto store = make_memory_cursor_store();
  EXPECT_EQ(store->load(4), (Cursor{0, 0}));
  store->save(4, {2, 3});
  EXPECT_EQ(store->load(4), (Cursor{2, 3}));
}

}  // namespace
}  // namespace herald
