#include "verdant/energy/measure.hpp"
#include "verdant/core/text.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace verdant::energy {

namespace {

std::atomic<pid_t> g_child{0};

void forward_term(int sig) {
  pid_t c = g_child.load();
  if (c > 0) ::kill(c, sig);
}

// Restores the previous signal dispositions when the wait is over.
class SignalScope {
 public:
  SignalScope() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGINT, &ign, &old_int_);
    ::sigaction(SIGQUIT, &ign, &old_quit_);
    struct sigaction fwd {};
    fwd.sa_handler = forward_term;
    ::sigaction(SIGTERM, &fwd, &old_term_);
  }
  ~SignalScope() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGQUIT, &old_quit_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {
  }, old_quit_{}, old_term_{};
};

std::string energy_text(double joules) {
  if (joules >= 3.6e5) return format_number("%.4f kWh", joules / kJoulesPerKwh);
  if (joules >= 1000) return format_number("%.2f kJ", joules / 1000);
  return format_number("%.2f J", joules);
}

std::string mass_text(double kg) {
  if (kg >= 1) return format_number("%.3f kg", kg);
  if (kg >= 1e-3) return format_number("%.3f g", kg * 1e3);
  return format_number("%.3f mg", kg * 1e6);
}

}  // namespace

CommandOutcome run_command(const std::vector<std::string>& argv) {
  CommandOutcome out;
  if (argv.empty()) {
    out.error = "no command given";
    out.exit_code = 127;
    return out;
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGQUIT);
  sigaddset(&defaults, SIGTERM);
  ::posix_spawnattr_setsigdefault(&attr, &defaults);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);

  SignalScope signals;
  pid_t pid = 0;
  // glibc reports a failed exec (not found, not executable) as posix_spawnp's return value.
  int rc = ::posix_spawnp(&pid, args[0], nullptr, &attr, args.data(), environ);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    out.error = "cannot start '" + argv[0] + "': " + std::strerror(rc);
    out.exit_code = 127;
    return out;
  }
  out.started = true;
  g_child = pid;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      out.error = std::string("waitpid: ") + std::strerror(errno);
      status = 0;
      break;
    }
  }
  g_child = 0;
  if (WIFEXITED(status)) {
    out.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.signal = WTERMSIG(status);
    out.exit_code = 128 + out.signal;
  }
  return out;
}

std::string format_report(const PhaseResult& t, const RunInfo& info,
                          const std::vector<std::string>& warnings) {
  std::string r;
  for (auto& w : warnings) r += "warning: " + w + "\n";
  r += format_number("duration          %.3f s\n", t.duration_s);
  r += "energy (process)  " + energy_text(t.process.total()) + "  = cpu " +
       energy_text(t.process[Domain::cpu]) + " + dram " + energy_text(t.process[Domain::dram]) +
       " + gpu " + energy_text(t.process[Domain::gpu]) +
       format_number("   [cpu share %.1f%%", t.cpu_share * 100) +
       format_number(", memory share %.2f%%]\n", t.ram_share * 100);
  if (t.machine_reported)
    r += "energy (machine)  " + energy_text(t.machine.total()) + "  = cpu " +
         energy_text(t.machine[Domain::cpu]) + " + dram " + energy_text(t.machine[Domain::dram]) +
         " + gpu " + energy_text(t.machine[Domain::gpu]) + "\n";
  else
    r += "energy (machine)  not reported here: " + info.machine_reason + "\n";
  for (Domain d : kAllDomains) {
    const std::string& src = t.source[int(d)];
    if (src == "none") continue;
    r += std::string("source ") + domain_name(d) +
         std::string(11 - std::strlen(domain_name(d)), ' ') + src + "\n";
  }
  r += "emissions         " + mass_text(t.emissions_kg) + " CO2eq (process share; " +
       info.carbon_description + ", " + info.pue_description + ")\n";
  if (!t.carbon_note.empty()) r += "                  note: " + t.carbon_note + "\n";
  if (t.machine_reported)
    r += "emissions machine " + mass_text(t.machine_emissions_kg) + " CO2eq\n";
  if (t.cost)
    r += format_number("cost              %.6f ", *t.cost) + info.currency +
         " (process share x PUE)\n";
  else
    r += "cost              not computed (no --price given)\n";
  if (measurement_kind(t) != "measured")
    r += "note: figures marked 'estimated' are a model, not a measurement\n";
  return r;
}

}  // namespace verdant::energy
