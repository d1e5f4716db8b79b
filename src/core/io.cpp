#include "verdant/core/io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>

#include "verdant/core/error.hpp"

namespace verdant {

namespace fs = std::filesystem;

namespace {
// write_file_atomic's temporary is "<target>.tmp.<pid>", so that writers in several
// processes never share one, and a dead writer's leftover can be told from a live one's.
constexpr std::string_view kTemporaryInfix = ".tmp.";

fs::path temporary_for(const fs::path& target) {
  fs::path tmp = target;
  tmp += std::string(kTemporaryInfix) + std::to_string(::getpid());
  return tmp;
}

// The pid in `name` when it is "<target_name>.tmp.<pid>" with the pid written as
// temporary_for() writes it (decimal, no sign, no leading zero).
std::optional<pid_t> temporary_pid(std::string_view name, std::string_view target_name) {
  if (!name.starts_with(target_name)) return std::nullopt;
  name.remove_prefix(target_name.size());
  if (!name.starts_with(kTemporaryInfix)) return std::nullopt;
  name.remove_prefix(kTemporaryInfix.size());
  if (name.empty() || name.front() < '1' || name.front() > '9') return std::nullopt;
  pid_t pid = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc() || end != name.data() + name.size()) return std::nullopt;
  return pid;
}

bool process_is_gone(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;  // EPERM: alive, another user's
}
}  // namespace

void write_file_atomic(const fs::path& path, std::span<const std::uint8_t> bytes) {
  const fs::path tmp = temporary_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path.string() + ": cannot write: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(path.string() + ": write failed: " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path.string() + ": write failed: " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path.string() + ": cannot replace: " + std::strerror(err));
  }
}

void write_file_atomic(const fs::path& path, std::string_view text) {
  write_file_atomic(path, std::span<const std::uint8_t>(
                              reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

namespace {
// Why files cannot be created in the existing folder `folder` (errno's text), or "".
std::string create_denied(const fs::path& folder) {
  return ::access(folder.c_str(), W_OK | X_OK) == 0 ? "" : std::strerror(errno);
}
}  // namespace

void check_writable_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a directory, expected a file");
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(folder, ec))
    throw Error(path.string() + ": cannot write: " + folder.string() +
                " is not an existing folder");
  if (const std::string why = create_denied(folder); !why.empty())
    throw Error(path.string() + ": cannot write in " + folder.string() + ": " + why);
}

void create_writable_folder(const fs::path& folder) {
  std::error_code ec;
  const auto status = fs::status(folder, ec);
  if (fs::exists(status) && !fs::is_directory(status))
    throw Error(folder.string() + ": is a file, expected a folder");
  fs::create_directories(folder, ec);
  if (ec) throw Error(folder.string() + ": cannot create folder: " + ec.message());
  if (const std::string why = create_denied(folder); !why.empty())
    throw Error(folder.string() + ": cannot create files in it: " + why);
}

std::size_t remove_stale_temporaries(const fs::path& target) {
  const std::string target_name = target.filename().string();
  if (target_name.empty()) return 0;
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    const auto pid = temporary_pid(entry.path().filename().string(), target_name);
    std::error_code entry_ec;
    if (!pid || *pid == ::getpid() || !entry.is_regular_file(entry_ec) ||
        entry.is_symlink(entry_ec) || !process_is_gone(*pid))
      continue;
    if (fs::remove(entry.path(), entry_ec)) ++removed;
  }
  return removed;
}

std::vector<std::uint8_t> read_file_bytes(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  // One read of the whole file: a per-character iterator copy is ~10x slower on big tables.
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(path.string() + ": cannot determine size");
  std::vector<std::uint8_t> data(static_cast<std::size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(data.data()), size))
    throw Error(path.string() + ": read failed");
  return data;
}

std::string read_file_text(const fs::path& path) {
  auto bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace verdant
