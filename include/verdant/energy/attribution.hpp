#pragma once
// Who reports the whole machine's figure. Meters such as RAPL count the whole machine, so
// when several trackers run on one machine (ranks of a distributed job, or `verdant
// measure -- verdant train`), only one of them may report the machine-level energy; every
// tracker still reports its own process tree's share.
//
// Rule, first match wins:
//   1. VERDANT_LOCAL_RANK is set (launchers set it per machine): rank "0" reports the
//      machine, any other rank does not.
//   2. Otherwise an exclusive flock() on a per-machine lock file (default
//      /tmp/verdant-energy-machine.lock, or $VERDANT_MACHINE_LOCK): the first tracker to
//      take it reports the machine until it exits (the kernel drops the lock even on a
//      crash); the others report their process share only.
#include <filesystem>
#include <string>

namespace verdant::energy {

struct LeaseOptions {
  std::filesystem::path lock_path;  // empty: $VERDANT_MACHINE_LOCK or the /tmp default
  bool use_rank_env = true;         // honour VERDANT_LOCAL_RANK
};

class MachineLease {
 public:
  explicit MachineLease(const LeaseOptions& options = {});
  ~MachineLease();
  MachineLease(MachineLease&& other) noexcept;
  MachineLease& operator=(MachineLease&& other) noexcept;
  MachineLease(const MachineLease&) = delete;
  MachineLease& operator=(const MachineLease&) = delete;

  bool leader() const { return leader_; }
  // One line: why this process does or does not report the machine.
  const std::string& reason() const { return reason_; }

 private:
  int fd_ = -1;
  bool leader_ = false;
  std::string reason_;
};

std::filesystem::path default_machine_lock_path();

}  // namespace verdant::energy
