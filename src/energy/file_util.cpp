#include "file_util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "verdant/core/error.hpp"

namespace verdant::energy::detail {

std::optional<std::string> read_small_file(const std::filesystem::path& path, std::string* why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (why) *why = path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (why) *why = path.string() + ": " + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

RereadFile::~RereadFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<std::string> RereadFile::read(std::string* why) {
  if (fd_ < 0) fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (why) *why = path_.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  for (off_t offset = 0;;) {
    ssize_t n = ::pread(fd_, buf, sizeof buf, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (why) *why = path_.string() + ": " + std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
  return text;
}

std::string read_small_file_or_throw(const std::filesystem::path& path) {
  std::string why;
  auto text = read_small_file(path, &why);
  if (!text) throw Error(why);
  return *text;
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace verdant::energy::detail
