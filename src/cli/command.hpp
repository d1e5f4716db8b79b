#pragma once
// Every `verdant` verb registers itself here from its own cmd_<verb>.cpp, so adding a verb
// never touches main.cpp. setup() declares the verb's options on its subcommand and returns
// the function that runs it (returning the process exit code).
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace verdant::cli {

using Runner = std::function<int()>;

struct CommandSpec {
  std::string name;
  std::string help;
  std::function<Runner(CLI::App& sub)> setup;
};

// Returns true so it can initialise a namespace-scope constant in the verb's file.
bool register_command(CommandSpec spec);

}  // namespace verdant::cli
