#pragma once
// Small text helpers the modules that print figures and write pages share.
#include <string>

namespace verdant {

// One number through a printf format with a single double conversion ("%.2f", "%g W"), at
// most 63 characters.
std::string format_number(const char* printf_format, double value);
// `text` with <, >, & and " as entities, for HTML and SVG text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace verdant
