// DeliveryChecker: the delivery contract checked from the outside, as Jepsen's queue checker does
// (docs/crash-testing.md). A test or a load tool records every send (acknowledged, refused, or of
// unknown outcome), every message each device handed to its app and every gap each device was
// told of; after faults heal and devices drain, check() says what went wrong:
//
//   lost               acknowledged for a device, never delivered to it (nor inside a gap it was
//                      told of)
//   unexpected         delivered, but never sent to that device, or only refused
//   duplicated         the same message delivered to the same device more than once
//   seq reused         two different messages at the same (device, stream, epoch, seq)
//   out of order       a seq at or below the last one of its epoch, at a position not delivered
//                      before (a repeat at the same position is a duplicate)
//   unannounced gaps   a seq beyond the next one, or another epoch, without a gap told between
//
// Each must be zero (ok()). Unknown outcomes (no answer came: a crash, a timeout) are reported
// apart: those that arrived and those that did not, counted against nobody. A message lost inside
// a gap the device was told of (an expiry, a truncation) is reported apart too: the contract
// allows it as long as it is announced.
//
// Messages are matched by a key the sender chose and put in the payload (an idempotency key, a
// counter), not by the server's message id, which a send of unknown outcome never learns. One
// key is one logical message; record a send once with its final outcome (a careful sender's
// retries are one send), or several times: the strongest outcome counts (acknowledged over
// unknown over refused).
//
// Thread-safe: devices record from their clients' strands, senders from their threads. A
// device's deliveries and gaps must be recorded in the order its handlers saw them (one strand
// per client does that). Streams other than the inbox (stream 0) may start anywhere: the first
// delivery of such a stream, in the first epoch seen, sets where the walk starts.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "herald/client.h"
#include "sender.h"

namespace herald::testing {

enum class SendOutcome {
  kAcknowledged,  // the API answered 200 (or 202): the message is stored
  kRefused,       // the API answered with an error that means "not stored" (4xx)
  kUnknown,       // no answer, or one that does not say (5xx, timeout, connection lost)
};

// Where a message was stored for one target, as the API's answer said (its targets' epoch and
// seq, in the device's inbox for a unicast message).
struct StreamPosition {
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

struct SendRecord {
  std::string key;                   // the sender's key, also in the payload
  std::vector<std::string> devices;  // the targets
  SendOutcome outcome = SendOutcome::kUnknown;
  // Empty, or one per device: where it was stored, to tell a message lost inside an announced
  // gap from a lost one. Without it every acknowledged message not delivered is lost.
  std::vector<StreamPosition> positions;
};

struct DeliveryRecord {
  std::string device;
  std::string app;
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::string id;   // the server's message id
  std::string key;  // the sender's key, read from the payload
};

struct GapRecord {
  std::string device;
  std::uint64_t stream = 0;
  std::uint64_t from_epoch = 0;
  std::uint64_t from_seq = 0;
  std::uint64_t epoch = 0;
  std::uint64_t resume_after_seq = 0;
};

struct DeliveryReport {
  // A count and a few examples, each a line naming the key, device and position.
  struct Finding {
    std::size_t count = 0;
    std::vector<std::string> examples;  // at most kMaxExamples
    void add(std::string example);
  };
  static constexpr std::size_t kMaxExamples = 5;

  // Sends, by outcome (one per key).
  std::size_t acknowledged = 0;
  std::size_t refused = 0;
  std::size_t unknown = 0;
  std::size_t deliveries = 0;  // every delivery recorded
  std::size_t gaps = 0;        // every gap recorded
  std::size_t owed = 0;        // (acknowledged key, target device) pairs

  // Violations: each must be zero.
  Finding lost;              // per (key, device)
  Finding unexpected;        // per delivery
  Finding duplicated;        // per delivery after the first of a (key, device)
  Finding seq_reused;        // per position holding a second message
  Finding out_of_order;      // per delivery
  Finding unannounced_gaps;  // per jump
  // Reported, not violations.
  Finding lost_in_announced_gap;  // per (key, device): owed, skipped by a gap the device was told
  Finding unknown_arrived;        // per (key, device)
  Finding unknown_not_arrived;    // per (key, device)

  [[nodiscard]] std::size_t violations() const;
  [[nodiscard]] bool ok() const { return violations() == 0; }
  // Several lines: the counts, then each non-empty finding with its examples.
  [[nodiscard]] std::string summary() const;
};

class DeliveryChecker {
 public:
  void record_send(SendRecord send);
  void record_delivery(DeliveryRecord delivery);
  void record_gap(GapRecord gap);

  // Handlers for a client of `device` that record here: messages of every app (through the
  // message handler given to on_message / on_other_message), with `key_of` reading the sender's
  // key from a message (its payload); and gaps (on_gap).
  Client::MessageHandler message_handler(std::string device,
                                         std::function<std::string(const Message&)> key_of);
  Client::GapHandler gap_handler(std::string device);

  // Waits until `device` handed the message `key` to its app, or `timeout` passed; true if it
  // did. With per-device ordering, a last message ("fence") sent after everything else and
  // awaited here means the device has drained everything stored before it.
  bool wait_for(const std::string& device, const std::string& key,
                std::chrono::milliseconds timeout) const;

  // Deliveries recorded so far for `device` (to wait for a drain), and in all.
  [[nodiscard]] std::size_t deliveries(const std::string& device) const;
  [[nodiscard]] std::size_t deliveries() const;

  // Checks everything recorded so far. Call after devices drained: before, messages still on
  // their way count as lost.
  [[nodiscard]] DeliveryReport check() const;

 private:
  // One device's deliveries and gaps, in the order its handlers saw them.
  struct Event {
    std::optional<DeliveryRecord> delivery;
    std::optional<GapRecord> gap;
  };

  mutable std::mutex mu_;
  mutable std::condition_variable delivered_cv_;
  std::set<std::pair<std::string, std::string>> delivered_;  // (device, key)
  std::map<std::string, SendRecord> sends_;                  // by key, the strongest outcome
  std::map<std::string, std::vector<Event>> events_;         // by device
  std::size_t delivery_count_ = 0;
};

const char* to_string(SendOutcome outcome);

// What a sender API answer says about a message: 200 or 202 acknowledged; 429 and the other 4xx
// refused (nothing stored); no answer, 503 and the other 5xx unknown (503 "still being answered"
// may follow a stored message). With an acknowledged unicast answer, `positions` holds each
// target's epoch and seq from the answer's targets (in the inbox, stream 0).
SendRecord send_record(std::string key, std::vector<std::string> devices,
                       const PushOutcome& answer);

// The sender's key of a message whose JSON payload carries it as {"k": "..."}; "" when not.
std::string payload_key(const Message& m);

}  // namespace herald::testing
