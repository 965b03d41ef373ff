#include "surgery/files/window_record.hpp"

#include <climits>
#include <sstream>

#include "surgery/base/errors.hpp"

namespace surgery {
namespace {

const char kKey[] = "# caffe-surgery window:";

}  // namespace

std::string window_record_line(const RecordedWindow& window) {
  if (window.empty()) return "";
  return std::string(kKey) + " " + std::to_string(window.h) + " " + std::to_string(window.w) +
         "\n";
}

RecordedWindow find_window_record(const std::string& text, const std::string& source) {
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;  // blank lines may sit among the comments
    if (line[first] != '#') break;             // the definition begins: no record after it
    if (line.compare(first, sizeof kKey - 1, kKey) != 0) continue;
    std::istringstream values(line.substr(first + sizeof kKey - 1));
    long long h = 0, w = 0;
    std::string rest;
    if (!(values >> h >> w) || (values >> rest) || h < 1 || w < 1 || h > INT_MAX ||
        w > INT_MAX) {
      throw ParseError("'" + source + "' line " + std::to_string(number) +
                       ": the window record must be two sizes, as in '" + kKey +
                       " 227 227'");
    }
    return {h, w};
  }
  return {};
}

}  // namespace surgery
