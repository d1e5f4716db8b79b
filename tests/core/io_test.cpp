#include "verdant/core/io.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/error_helpers.hpp"
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

TEST(Io, OutputsAreCheckedBeforeAnyWork) {
  fs::path dir = fs::temp_directory_path() / ("verdant_io_out_" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  write_file_atomic(dir / "file", std::string_view("x"));
  using test_support::error_of;
  EXPECT_NO_THROW(check_writable_file(dir / "new.csv"));
  EXPECT_EQ(error_of([&] { check_writable_file(dir / "sub"); }),
            (dir / "sub").string() + ": is a directory, expected a file");
  EXPECT_EQ(error_of([&] { check_writable_file(dir / "none" / "x.csv"); }),
            (dir / "none" / "x.csv").string() + ": cannot write: " + (dir / "none").string() +
                " is not an existing folder");
  EXPECT_NO_THROW(create_writable_folder(dir / "a" / "b"));
  EXPECT_TRUE(fs::is_directory(dir / "a" / "b"));
  EXPECT_EQ(error_of([&] { create_writable_folder(dir / "file"); }),
            (dir / "file").string() + ": is a file, expected a folder");
  EXPECT_EQ(error_of([&] {
              create_writable_folder(dir / "file" / "x");
            }).rfind((dir / "file" / "x").string() + ": cannot create folder: ", 0),
            0u);
  EXPECT_EQ(read_file_text(dir / "file"), "x");
  if (::geteuid() != 0) {  // root may write anywhere
    fs::permissions(dir / "sub", fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_EQ(error_of([&] { check_writable_file(dir / "sub" / "x.csv"); }),
              (dir / "sub" / "x.csv").string() + ": cannot write in " + (dir / "sub").string() +
                  ": Permission denied");
    EXPECT_EQ(error_of([&] { create_writable_folder(dir / "sub"); }),
              (dir / "sub").string() + ": cannot create files in it: Permission denied");
    fs::permissions(dir / "sub", fs::perms::owner_all);
  }
  fs::remove_all(dir);
}

namespace {
// A pid that surely names no process: a child we started, which exited and was reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}
}  // namespace

TEST(Io, StaleTemporariesOfDeadWritersAreRemovedOthersKept) {
  fs::path dir = fs::temp_directory_path() / ("verdant_io_stale_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path target = dir / "checkpoint.vckpt";
  const std::string dead = std::to_string(dead_pid());
  const std::string mine = std::to_string(::getpid());
  auto touch = [&](const std::string& name) {
    write_file_atomic(dir / name, std::string_view("x"));
  };
  touch("checkpoint.vckpt");
  touch("checkpoint.vckpt.tmp." + dead);   // a dead writer's: removed
  touch("checkpoint.vckpt.tmp." + mine);   // ours, maybe a write in progress: kept
  touch("checkpoint.vckpt.tmp.1");         // init's pid is alive: kept
  touch("checkpoint.vckpt.tmp.0" + dead);  // not a name our writer makes: kept
  touch("checkpoint.vckpt.tmp." + dead + ".bak");
  touch("checkpoint.vckpt2.tmp." + dead);  // another target's: kept
  touch("other.tmp." + dead);
  fs::create_directories(dir / ("checkpoint.vckpt.tmp.1" + dead));  // not a file: kept

  EXPECT_EQ(remove_stale_temporaries(target), 1u);
  EXPECT_FALSE(fs::exists(dir / ("checkpoint.vckpt.tmp." + dead)));
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 8);
  EXPECT_TRUE(fs::exists(dir / ("checkpoint.vckpt.tmp." + mine)));
  EXPECT_EQ(remove_stale_temporaries(target), 0u);
  EXPECT_EQ(remove_stale_temporaries(dir / "missing" / "x.vckpt"), 0u);  // no folder: nothing
  fs::remove_all(dir);
}

}  // namespace verdant
