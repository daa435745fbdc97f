// StreamFilter: which readers of a shared stream a message is for, as a boolean expression over
// the streams a reader reads — the compiled form of a topic condition such as
// "'news' in topics && !('sports' in topics)", with each topic replaced by its stream id.
//
// It travels with a notify to every access node (which skips the connections it does not
// match) and is stored with the entry (storage::Entry::audience), so a pull answers a reader it
// does not match with a tombstone. The program is postfix: kHas pushes "the reader reads
// `stream`", kNot pops one value and pushes its negation, kAnd / kOr pop two and push one.
//
//   ('a' in topics || 'b' in topics) && !('c' in topics)   ->   has a, has b, or, has c, not, and
//
// Immutable once built; share it freely between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace herald::distribution {

class StreamFilter {
 public:
  enum class Op : std::uint8_t { kHas = 1, kNot = 2, kAnd = 3, kOr = 4 };
  struct Step {
    Op op = Op::kHas;
    std::uint64_t stream = 0;  // kHas only
    friend bool operator==(const Step&, const Step&) = default;
  };
  // Programs longer than this are refused by decode(); the logic layer's conditions (at most 5
  // topics, so at most 5 kHas and 4 binary operators, plus negations) stay far below it.
  static constexpr std::size_t kMaxSteps = 64;

  StreamFilter() = default;
  // `program` must be well formed (every operator has its operands, one value is left):
  // valid() says whether it is.
  explicit StreamFilter(std::vector<Step> program) : program_(std::move(program)) {}

  [[nodiscard]] bool valid() const;
  [[nodiscard]] const std::vector<Step>& program() const { return program_; }

  // Evaluates the program; `reads(stream)` answers whether the reader reads that stream.
  // Precondition: valid().
  [[nodiscard]] bool matches(const std::function<bool(std::uint64_t)>& reads) const;
  // The same, for a reader whose streams are the sorted `streams`.
  [[nodiscard]] bool matches_sorted(std::span<const std::uint64_t> streams) const;

  // A compact byte form for storage: one byte per op, a varint stream id after each kHas.
  [[nodiscard]] std::string encode() const;
  // nullopt for bytes that are not the encoding of a valid program of at most kMaxSteps.
  [[nodiscard]] static std::optional<StreamFilter> decode(std::string_view bytes);

  friend bool operator==(const StreamFilter&, const StreamFilter&) = default;

 private:
  std::vector<Step> program_;
};

}  // namespace herald::distribution
