#include "verdant/core/io.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "verdant/core/error.hpp"

namespace verdant {
namespace fs = std::filesystem;

TEST(Io, AtomicWriteReplacesAndLeavesNoTemporary) {
  fs::path dir = fs::temp_directory_path() / "verdant_io_test";
  fs::create_directories(dir);
  fs::path f = dir / "a.txt";
  write_file_atomic(f, std::string_view("first"));
  write_file_atomic(f, std::string_view("second"));
  EXPECT_EQ(read_file_text(f), "second");
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);
  fs::remove_all(dir);
}

TEST(Io, MissingFileErrorNamesThePath) {
  try {
    read_file_bytes("/nonexistent/verdant/file.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/verdant/file.bin"), std::string::npos);
  }
}

TEST(Io, ReadingADirectoryIsAnError) {
  EXPECT_THROW(read_file_bytes(fs::temp_directory_path()), Error);
}

TEST(Io, WriteIntoMissingDirectoryFailsCleanly) {
  EXPECT_THROW(write_file_atomic("/nonexistent/dir/x", std::string_view("x")), Error);
}

}  // namespace verdant
