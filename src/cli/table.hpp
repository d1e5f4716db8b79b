#pragma once
// A plain-text table with right-aligned numeric columns, for summaries.
#include <algorithm>
#include <string>
#include <vector>

namespace verdant::cli {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> row) {
    row.resize(header_.size());
    rows_.push_back(std::move(row));
  }
  std::string str() const {
    std::vector<std::size_t> width(header_.size());
    for (std::size_t c = 0; c < header_.size(); ++c) {
      width[c] = header_[c].size();
      for (auto& r : rows_) width[c] = std::max(width[c], r[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
      std::string out;
      for (std::size_t c = 0; c < cells.size(); ++c) {
        if (c) out += "  ";
        // First column left-aligned (labels), the rest right-aligned (numbers).
        std::string pad(width[c] - cells[c].size(), ' ');
        out += c == 0 ? cells[c] + pad : pad + cells[c];
      }
      while (!out.empty() && out.back() == ' ') out.pop_back();
      return out + "\n";
    };
    std::string out = line(header_);
    std::size_t total = 0;
    for (auto w : width) total += w;
    out += std::string(total + 2 * (width.size() - 1), '-') + "\n";
    for (auto& r : rows_) out += line(r);
    return out;
  }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace verdant::cli
