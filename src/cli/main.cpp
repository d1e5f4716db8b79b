// The `verdant` executable: parses the command line and hands over to the chosen verb.
// Errors become one line on stderr and a non-zero exit: 2 for usage, 1 for everything else.
#include <cstdio>
#include <exception>
#include <map>
#include <vector>

#include "command.hpp"
#include "options.hpp"
#include "verdant/core/error.hpp"
#include "verdant/dist/data_parallel.hpp"
#include "verdant/version.hpp"

namespace verdant::cli {

namespace {
std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> commands;
  return commands;
}

int fail(const char* message, int code) {
  std::fprintf(stderr, "verdant: error: %s\n", message);
  return code;
}

// In an MPI job, an error of one process ends the whole job at once (the others would wait in
// a collective forever) and says which rank; an error every process raises alike is said
// once, by rank 0.
int fail_job(const std::string& message, int code, bool every_process) {
  if (!dist::launched_by_mpirun()) return fail(message.c_str(), code);
  dist::Communicator& world = dist::Communicator::world();
  if (every_process) {
    if (world.rank() == 0) fail(message.c_str(), code);
    return code;
  }
  fail(("rank " + std::to_string(world.rank()) + ": " + message).c_str(), code);
  std::fflush(nullptr);
  world.abort(code);
}
}  // namespace

bool register_command(CommandSpec spec) {
  registry().push_back(std::move(spec));
  return true;
}

}  // namespace verdant::cli

int main(int argc, char** argv) {
  using namespace verdant;
  CLI::App app{"verdant: train, measure and shrink neural networks with less energy"};
  app.set_version_flag("--version", std::string("verdant ") + kVersion);
  app.require_subcommand(1);
  std::map<CLI::App*, cli::Runner> runners;
  CLI::App* chosen = nullptr;
  try {
    for (auto& spec : cli::registry()) {
      CLI::App* sub = app.add_subcommand(spec.name, spec.help);
      runners[sub] = spec.setup(*sub);
    }
    app.parse(argc, argv);
    for (auto& [sub, run] : runners)
      if (sub->parsed()) {
        chosen = sub;
        return run();
      }
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "verdant: error: %s (see --help)\n", e.what());
    return 2;
  } catch (const Error& e) {
    // The library names its settings; say them as this verb's flags.
    const std::string line = e.worded_as([&](const std::string& setting) {
      return chosen ? cli::flag_for_setting(*chosen, setting) : std::string();
    });
    return cli::fail_job(line, dynamic_cast<const UsageError*>(&e) ? 2 : 1,
                         dynamic_cast<const dist::JobError*>(&e) != nullptr);
  } catch (const std::exception& e) {
    return cli::fail_job(e.what(), 1, false);
  }
  return 0;
}
