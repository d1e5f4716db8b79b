// Only one tracker per machine reports the machine-level figure.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "energy_test_util.hpp"
#include "verdant/energy/attribution.hpp"

namespace verdant::energy {
namespace {

using testing::TempDir;

class Attribution : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("VERDANT_LOCAL_RANK"); }
  void TearDown() override { ::unsetenv("VERDANT_LOCAL_RANK"); }
};

TEST_F(Attribution, FirstLockHolderReportsTheMachine) {
  TempDir t;
  LeaseOptions o;
  o.lock_path = t / "machine.lock";
  {
    MachineLease first(o);
    MachineLease second(o);
    EXPECT_TRUE(first.leader());
    EXPECT_FALSE(second.leader());
    EXPECT_NE(second.reason().find("held by pid " + std::to_string(::getpid())), std::string::npos)
        << second.reason();
    MachineLease moved(std::move(first));  // the lock moves with the object
    EXPECT_TRUE(moved.leader());
    EXPECT_FALSE(MachineLease(o).leader());
  }
  EXPECT_TRUE(MachineLease(o).leader());  // released when the holder goes away
}

TEST_F(Attribution, AnotherProcessDoesNotReportTwice) {
  TempDir t;
  LeaseOptions o;
  o.lock_path = t / "machine.lock";
  MachineLease parent(o);
  ASSERT_TRUE(parent.leader());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MachineLease child(o);
    ::_exit(child.leader() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child claimed the machine too";
}

TEST_F(Attribution, LocalRankDecides) {
  TempDir t;
  LeaseOptions o;
  o.lock_path = t / "machine.lock";
  ::setenv("VERDANT_LOCAL_RANK", "1", 1);
  MachineLease rank1(o);
  EXPECT_FALSE(rank1.leader());
  EXPECT_NE(rank1.reason().find("VERDANT_LOCAL_RANK=1"), std::string::npos);
  ::setenv("VERDANT_LOCAL_RANK", "0", 1);
  EXPECT_TRUE(MachineLease(o).leader());
  EXPECT_TRUE(MachineLease(o).leader());  // rank decides, not the lock
}

TEST_F(Attribution, UnusableLockPathStillReportsAndSaysWhy) {
  TempDir t;
  LeaseOptions o;
  o.lock_path = t / "no/such/dir/machine.lock";
  MachineLease lease(o);
  EXPECT_TRUE(lease.leader());
  EXPECT_NE(lease.reason().find("without a lock"), std::string::npos) << lease.reason();
}

}  // namespace
}  // namespace verdant::energy
