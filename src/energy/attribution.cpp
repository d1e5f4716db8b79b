#include "verdant/energy/attribution.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "file_util.hpp"

namespace verdant::energy {

std::filesystem::path default_machine_lock_path() {
  if (const char* env = std::getenv("VERDANT_MACHINE_LOCK"); env && *env) return env;
  return "/tmp/verdant-energy-machine.lock";
}

MachineLease::MachineLease(const LeaseOptions& options) {
  if (options.use_rank_env) {
    if (const char* rank = std::getenv("VERDANT_LOCAL_RANK"); rank && *rank) {
      leader_ = std::string(rank) == "0";
      reason_ = std::string("VERDANT_LOCAL_RANK=") + rank +
                (leader_ ? ": this rank reports the machine"
                         : ": local rank 0 reports the machine, this rank its own share");
      return;
    }
  }
  auto path = options.lock_path.empty() ? default_machine_lock_path() : options.lock_path;
  // Mode 0666 so trackers of other users can share the same lock file.
  mode_t old = ::umask(0);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  ::umask(old);
  if (fd_ < 0) {
    // Without the lock nobody can be sure to be alone: report the machine, and say so.
    leader_ = true;
    reason_ = path.string() + ": " + std::strerror(errno) +
              "; reporting the machine figure without a lock";
    return;
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
    leader_ = true;
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      // The pid is only a diagnostic for others; the lock itself is what matters.
    }
    reason_ = "holds " + path.string() + ": this process reports the machine";
  } else {
    std::string holder = detail::trim(detail::read_small_file(path).value_or(""));
    reason_ = path.string() + " is held by " +
              (holder.empty() ? std::string("another process") : "pid " + holder) +
              ", which reports the machine; this process reports its own share";
    ::close(fd_);
    fd_ = -1;
  }
}

MachineLease::~MachineLease() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

MachineLease::MachineLease(MachineLease&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      leader_(other.leader_),
      reason_(std::move(other.reason_)) {}

MachineLease& MachineLease::operator=(MachineLease&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    leader_ = other.leader_;
    reason_ = std::move(other.reason_);
  }
  return *this;
}

}  // namespace verdant::energy
