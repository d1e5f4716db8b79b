#pragma once
// Running a command under the tracker (`verdant measure -- CMD ARGS...`) and the report.
#include <string>
#include <vector>

#include "verdant/energy/tracker.hpp"

namespace verdant::energy {

struct CommandOutcome {
  bool started = false;
  std::string error;  // why it could not be started (one line), when !started
  int exit_code = 0;  // like a shell: the exit status, 128+N when killed by signal N, 127
                      // when it could not be started
  int signal = 0;     // the signal that ended it, 0 if it exited
};

// Starts argv (searching PATH) and waits for it. While waiting, SIGINT and SIGQUIT are
// ignored here (the terminal sends them to the command too), so the report still comes
// out; the command gets default handlers. SIGTERM sent to us is forwarded to it.
CommandOutcome run_command(const std::vector<std::string>& argv);

// Human-readable summary: duration, energy (process share and machine), carbon, cost, and
// the source of every figure (measured or estimated, from what).
std::string format_report(const PhaseResult& total, const RunInfo& info,
                          const std::vector<std::string>& warnings);

}  // namespace verdant::energy
