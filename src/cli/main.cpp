// The `verdant` executable: parses the command line and hands over to the chosen verb.
// Errors become one line on stderr and a non-zero exit: 2 for usage, 1 for everything else.
#include <cstdio>
#include <exception>
#include <map>
#include <vector>

#include "command.hpp"
#include "verdant/core/error.hpp"

namespace verdant::cli {

namespace {
std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> commands;
  return commands;
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
  app.set_version_flag("--version", "verdant 0.1.0");
  app.require_subcommand(1);
  std::map<CLI::App*, cli::Runner> runners;
  try {
    for (auto& spec : cli::registry()) {
      CLI::App* sub = app.add_subcommand(spec.name, spec.help);
      runners[sub] = spec.setup(*sub);
    }
    app.parse(argc, argv);
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "verdant: error: %s (see --help)\n", e.what());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "verdant: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "verdant: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
