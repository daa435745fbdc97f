// libFuzzer target for what a heraldd node reads from Redis pub/sub in cluster mode: arbitrary
// bytes through decode_cluster_message (cluster_message.h), as another node's bug, an older
// version or anyone who can PUBLISH to the deployment's channels might send them.
//
// Invariants (a violation aborts, which libFuzzer reports as a crash and the corpus replay test
// as a failure):
//   - the decoder never crashes, whatever the bytes;
//   - a message it accepts has 1..kMaxClusterRecords records, devices within their bounds,
//     valid filters, and round-trips: the writer encodes it again, and that decodes to the same
//     message.
//
// Build with -DHERALD_BUILD_FUZZERS=ON and clang; run as
//   build-fuzz/bin/herald_cluster_message_fuzz src/distribution/redis/fuzz_corpus/cluster_message
// The checked-in corpus is replayed in every build by herald_cluster_message_fuzz_replay_test.

#include <cstdint>
#include <string>
#include <string_view>

#include "distribution/redis/cluster_message.h"
#include "protocol/fuzz_check.h"

namespace herald::distribution {
namespace {

bool same_record(const ClusterRecord& a, const ClusterRecord& b) {
  const bool same_filter =
      (!a.filter && !b.filter) || (a.filter && b.filter && *a.filter == *b.filter);
  return a.kind == b.kind && a.device == b.device && a.stream == b.stream &&
         a.head_seq == b.head_seq && a.priority == b.priority && a.spread_ms == b.spread_ms &&
         same_filter;
}

void check(std::string_view bytes) {
  const auto message = decode_cluster_message(bytes);
  if (!message) return;
  HERALD_FUZZ_CHECK(!message->sender.empty() && message->sender.size() <= kMaxClusterNodeNameBytes);
  HERALD_FUZZ_CHECK(!message->records.empty() && message->records.size() <= kMaxClusterRecords);
  ClusterMessageWriter writer(message->sender);
  for (const auto& r : message->records) {
    switch (r.kind) {
      case ClusterRecordKind::kNotify:
        HERALD_FUZZ_CHECK(writer.add_notify(r.device, r.stream, r.head_seq, r.priority));
        break;
      case ClusterRecordKind::kStreamsChanged:
        HERALD_FUZZ_CHECK(writer.add_streams_changed(r.device));
        break;
      case ClusterRecordKind::kStreamNotify: {
        HERALD_FUZZ_CHECK(!r.filter || r.filter->valid());
        StreamNotify notify;
        notify.stream = r.stream;
        notify.head_seq = r.head_seq;
        notify.priority = r.priority;
        notify.spread_ms = r.spread_ms;
        notify.filter = r.filter;
        HERALD_FUZZ_CHECK(writer.add_stream_notify(notify));
        break;
      }
    }
  }
  const auto again = decode_cluster_message(writer.take());
  HERALD_FUZZ_CHECK(again.has_value() && again->sender == message->sender &&
                    again->records.size() == message->records.size());
  for (std::size_t i = 0; i < again->records.size(); ++i) {
    HERALD_FUZZ_CHECK(same_record(again->records[i], message->records[i]));
  }
}

}  // namespace
}  // namespace herald::distribution

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  herald::distribution::check(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
