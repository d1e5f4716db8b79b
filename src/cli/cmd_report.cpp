// `verdant report DIR... --html report.html --appendix appendix.md`: a page people can look at
// and a compute appendix for papers and model cards, from sweep results or run folders.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/report/report.hpp"

namespace verdant::cli {
namespace {

struct ReportCommand {
  std::vector<std::string> dirs;
  std::string html, appendix;
};

int run_report(const ReportCommand& c) {
  if (c.html.empty() && c.appendix.empty())
    throw UsageError("give --html FILE and/or --appendix FILE", {"html", "appendix"});
  std::vector<std::filesystem::path> dirs(c.dirs.begin(), c.dirs.end());
  if (!c.html.empty()) {
    const std::string page = report::html_report(dirs);
    write_file_atomic(c.html, page);
    std::printf("wrote %s (%zu bytes)\n", c.html.c_str(), page.size());
  }
  if (!c.appendix.empty()) {
    write_file_atomic(c.appendix, report::compute_appendix(dirs));
    std::printf("wrote %s\n", c.appendix.c_str());
  }
  return 0;
}

const bool registered = register_command(
    {"report", "An HTML report and a compute appendix from sweep results or run folders",
     [](CLI::App& sub) -> Runner {
       auto c = std::make_shared<ReportCommand>();
       sub.add_option("dirs", c->dirs, "Sweep results folders or run output folders")->required();
       sub.add_option("--html", c->html, "Write one self-contained HTML page here");
       sub.add_option("--appendix", c->appendix, "Write the compute appendix (Markdown) here");
       return [c] { return run_report(*c); };
     }});

}  // namespace
}  // namespace verdant::cli
