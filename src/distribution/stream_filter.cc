#include "distribution/stream_filter.h"

#include <algorithm>
#include <bitset>
#include <cassert>

namespace herald::distribution {
namespace {

// Evaluates on a stack of at most kMaxSteps booleans.
template <class Reads>
bool run(const std::vector<StreamFilter::Step>& program, const Reads& reads) {
  std::bitset<StreamFilter::kMaxSteps> stack;
  std::size_t depth = 0;
  for (const auto& step : program) {
    switch (step.op) {
      case StreamFilter::Op::kHas:
        stack[depth++] = reads(step.stream);
        break;
      case StreamFilter::Op::kNot:
        stack[depth - 1] = !stack[depth - 1];
        break;
      case StreamFilter::Op::kAnd:
        --depth;
        stack[depth - 1] = stack[depth - 1] && stack[depth];
        break;
      case StreamFilter::Op::kOr:
        --depth;
        stack[depth - 1] = stack[depth - 1] || stack[depth];
        break;
    }
  }
  assert(depth == 1);
  return stack[0];
}

}  // namespace

bool StreamFilter::valid() const {
  if (program_.empty() || program_.size() > kMaxSteps) return false;
  std::size_t depth = 0;
  for (const auto& step : program_) {
    switch (step.op) {
      case Op::kHas:
        ++depth;
        break;
      case Op::kNot:
        if (depth < 1) return false;
        break;
      case Op::kAnd:
      case Op::kOr:
        if (depth < 2) return false;
        --depth;
        break;
      default:
        return false;
    }
  }
  return depth == 1;
}

bool StreamFilter::matches(const std::function<bool(std::uint64_t)>& reads) const {
  return run(program_, reads);
}

bool StreamFilter::matches_sorted(std::span<const std::uint64_t> streams) const {
  return run(program_, [&](std::uint64_t stream) {
    return std::binary_search(streams.begin(), streams.end(), stream);
  });
}

std::string StreamFilter::encode() const {
  std::string out;
  for (const auto& step : program_) {
    out.push_back(static_cast<char>(step.op));
    if (step.op != Op::kHas) continue;
    std::uint64_t v = step.stream;
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

std::optional<StreamFilter> StreamFilter::decode(std::string_view bytes) {
  std::vector<Step> program;
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (program.size() == kMaxSteps) return std::nullopt;
    Step step;
    const auto op = static_cast<std::uint8_t>(bytes[i++]);
    if (op < 1 || op > 4) return std::nullopt;
    step.op = static_cast<Op>(op);
    if (step.op == Op::kHas) {
      std::uint64_t v = 0;
      int shift = 0;
      for (;;) {
        if (i == bytes.size() || shift > 63) return std::nullopt;
        const auto b = static_cast<std::uint8_t>(bytes[i++]);
        if (shift == 63 && b > 1) return std::nullopt;  // past 64 bits
        v |= std::uint64_t{b & 0x7fu} << shift;
        if ((b & 0x80) == 0) break;
        shift += 7;
      }
      step.stream = v;
    }
    program.push_back(step);
  }
  StreamFilter filter(std::move(program));
  if (!filter.valid()) return std::nullopt;
  return filter;
}

}  // namespace herald::distribution
