#include "verdant/core/error.hpp"

#include <cctype>

namespace verdant {

namespace {
bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
}  // namespace

std::string Error::worded_as(const std::function<std::string(const std::string&)>& name_of) const {
  std::string m = what();
  for (const auto& setting : settings_) {
    const std::string name = name_of(setting);
    if (name.empty() || setting.empty()) continue;
    for (std::size_t at = m.find(setting); at != std::string::npos; at = m.find(setting, at + 1)) {
      const std::size_t end = at + setting.size();
      if ((at > 0 && word_char(m[at - 1])) || (end < m.size() && word_char(m[end]))) continue;
      m.replace(at, setting.size(), name);
      break;
    }
  }
  return m;
}

}  // namespace verdant
