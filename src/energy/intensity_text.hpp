#pragma once
// Internal text helpers for the carbon readers (CSV fields, numbers, names). Not installed.
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace verdant::energy::detail {

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// Parses a whole (trimmed) field as a finite double; nullopt if it is not one.
inline std::optional<double> parse_double(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Iterates over the lines of a text, tracking 1-based line numbers; strips "\r" and a UTF-8
// byte-order mark on the first line.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : rest_(text) {
    if (rest_.substr(0, 3) == "\xEF\xBB\xBF") rest_.remove_prefix(3);
  }
  bool next(std::string_view& line) {
    if (rest_.empty()) return false;
    auto nl = rest_.find('\n');
    line = rest_.substr(0, nl);
    rest_ = nl == std::string_view::npos ? std::string_view{} : rest_.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++number_;
    return true;
  }
  std::size_t number() const { return number_; }

 private:
  std::string_view rest_;
  std::size_t number_ = 0;
};

// Splits one CSV line (RFC 4180 quoting, "" escapes). Returns false on an unterminated
// quote. Fields are copied only when they contain quotes.
inline bool split_csv(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::size_t i = 0;
  while (true) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
          } else {
            ++i;
            closed = true;
            break;
          }
        } else {
          field += line[i++];
        }
      }
      if (!closed) return false;
      // Tolerate spaces after the closing quote.
      while (i < line.size() && line[i] != ',') ++i;
    } else {
      auto comma = line.find(',', i);
      auto end = comma == std::string_view::npos ? line.size() : comma;
      field.assign(line.substr(i, end - i));
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= line.size()) break;
    ++i;  // skip the comma
    if (i == line.size()) {
      fields.emplace_back();  // trailing empty field
      break;
    }
  }
  return true;
}

// Fast path for the common case: splits a line into views without copying. Lines holding
// a quote go through split_csv() into `storage` and are viewed from there.
inline bool split_csv_views(std::string_view line, std::vector<std::string_view>& fields,
                            std::vector<std::string>& storage) {
  fields.clear();
  if (line.find('"') != std::string_view::npos) {
    if (!split_csv(line, storage)) return false;
    for (const auto& f : storage) fields.emplace_back(f);
    return true;
  }
  std::size_t start = 0;
  while (true) {
    auto comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return true;
    }
    fields.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
}

}  // namespace verdant::energy::detail
