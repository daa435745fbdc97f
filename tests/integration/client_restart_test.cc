// A device process killed (-9) again and again in the middle of delivery: the real herald-device
// in its exactly-once journal mode (--out), against a real heraldd. Afterwards its journal holds
// every accepted message exactly once, in order, with sequence numbers 1..N.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "herald_server.h"
#include "process.h"
#include "sender.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMessages = 3'000;
constexpr int kKills = 6;

struct JournalLine {
  std::uint64_t seq = 0;
  std::int64_t n = 0;
};

std::vector<JournalLine> read_journal(const std::filesystem::path& path) {
  std::vector<JournalLine> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto v = boost::json::parse(line).as_object();
    EXPECT_EQ(v.at("app").as_string(), kNewsApp.id);
    lines.push_back(
        {static_cast<std::uint64_t>(v.at("seq").as_int64()), v.at("data").at("n").as_int64()});
  }
  return lines;
}

TEST(ClientRestart, KillNineOfTheDeviceMidDeliveryNeitherLosesNorRepeats) {
  HeraldServer server;
  const auto token = Sender(server.http_port()).register_device(kNewsApp, "phone-restart");
  const auto dir = make_temp_dir("herald-restart");
  const auto journal = dir / "phone-restart.jsonl";
  auto start_device = [&] {
    return std::make_unique<Process>(
        std::vector<std::string>{bin_path("herald-device").string(), "--server",
                                 "127.0.0.1:" + std::to_string(server.device_port()), "--device",
                                 "phone-restart", "--token", token, "--out", journal.string()},
        dir / "stdout.txt");
  };

  // Half the messages wait as a backlog before the device first connects, so that kills land
  // while batches are in flight; the other half is pushed while the device is killed and
  // restarted. Every push must be accepted (the server stays up), so the journal must end up
  // holding exactly n = 0..kMessages-1.
  auto push_range = [&](std::size_t from, std::size_t to) {
    Sender sender(server.http_port());
    for (std::size_t n = from; n < to; ++n) {
      const auto r = sender.push(kNewsApp, {"phone-restart"}, "{\"n\":" + std::to_string(n) + "}");
      if (!r.accepted()) return n;
    }
    return to;
  };
  ASSERT_EQ(push_range(0, kMessages / 2), kMessages / 2);
  std::size_t pushed_to = 0;
  std::thread pusher([&] { pushed_to = push_range(kMessages / 2, kMessages); });

  LineCounter lines(journal);
  auto device = start_device();
  for (int k = 1; k <= kKills; ++k) {
    // Kill once the journal has grown past the next step: the device is in mid-delivery.
    const std::size_t step = kMessages * static_cast<std::size_t>(k) / (kKills + 1);
    ASSERT_GE(lines.wait_for(step, 60s), step) << "kill " << k;
    device->kill9();
    device = start_device();
  }
  pusher.join();
  ASSERT_EQ(pushed_to, kMessages) << "a push was refused";
  ASSERT_EQ(lines.wait_for(kMessages, 60s), kMessages);
  ASSERT_TRUE(device->terminate().has_value());

  const auto got = read_journal(journal);
  ASSERT_EQ(got.size(), kMessages);
  std::set<std::int64_t> seen;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1) << "gap, repeat or reorder at line " << i;
    EXPECT_TRUE(seen.insert(got[i].n).second) << "repeated n=" << got[i].n;
    EXPECT_EQ(got[i].n, static_cast<std::int64_t>(i)) << "line " << i;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::testing
