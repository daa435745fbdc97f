// A full disk under a real heraldd (docs/storage.md, "Disk full and failed writes"): heraldd keeps
// its data on a small tmpfs of its own, in a private mount namespace; the test fills that file
// system with a ballast file until the sender API refuses new messages with 507 storage_full,
// checks that every message it accepted reaches the device exactly once, frees the space, sees
// messages accepted and delivered again, then kill -9s and restarts heraldd and reads the whole
// inbox again: nothing accepted is lost.
//
// The namespace is held by a process of the test ("unshare --mount ... sleep"), so that it and
// its tmpfs outlive heraldd's restarts; heraldd joins it through nsenter, and the test reaches
// the tmpfs through /proc/<holder>/root. Needs root (mount namespaces, mounting tmpfs): skipped
// otherwise, with the reason.
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "herald_server.h"
#include "process.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1u << 20;
constexpr std::uint64_t kTmpfsBytes = 128 * kMiB;
constexpr std::uint64_t kReserveMiB = 16;
constexpr auto kSafetyTimeout = 30s;

// A private mount namespace with a tmpfs mounted on `dir` (the same path as on the host, where
// it is an empty directory), held open by a sleeping process.
class SmallDisk {
 public:
  SmallDisk() : dir_(make_temp_dir("herald-diskfull")) {
    const auto marker = dir_.parent_path() / (dir_.filename().string() + ".mounted");
    marker_ = marker;
    const std::string script = "mount -t tmpfs -o size=" + std::to_string(kTmpfsBytes) +
                               " tmpfs '" + dir_.string() + "' && echo mounted > '" +
                               marker.string() + "' && exec sleep 100000";
    holder_ = std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script});
    ready_ = holder_->wait_for_file(marker, kSafetyTimeout);
  }
  ~SmallDisk() {
    holder_.reset();  // the namespace and its tmpfs go with it
    std::error_code ignored;
    std::filesystem::remove(marker_, ignored);
    std::filesystem::remove_all(dir_, ignored);
  }

  // False when mount namespaces or tmpfs mounts are not permitted here.
  [[nodiscard]] bool ready() const { return ready_; }
  // The mount point as heraldd sees it.
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  // The same directory as this process reaches it, inside the namespace.
  [[nodiscard]] std::filesystem::path from_here() const {
    return std::filesystem::path("/proc") / std::to_string(holder_->pid()) / "root" /
           dir_.relative_path();
  }
  // nsenter into the namespace: heraldd's command prefix.
  [[nodiscard]] std::vector<std::string> enter() const {
    return {"/usr/bin/nsenter", "--mount=/proc/" + std::to_string(holder_->pid()) + "/ns/mnt",
            "--"};
  }
  [[nodiscard]] std::uint64_t free_bytes() const {
    struct statvfs fs {};
    if (statvfs(from_here().c_str(), &fs) != 0) return 0;
    return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  }
  // Grows the ballast file by `bytes` (written, so that tmpfs really holds them).
  void add_ballast(std::uint64_t bytes) {
    std::ofstream out(from_here() / "ballast", std::ios::binary | std::ios::app);
    const std::string chunk(kMiB, 'b');
    for (std::uint64_t left = bytes; left > 0;) {
      const auto n = std::min<std::uint64_t>(left, chunk.size());
      out.write(chunk.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
    out.flush();
    ASSERT_TRUE(out.good()) << "cannot write the ballast";
  }
  void remove_ballast() { std::filesystem::remove(from_here() / "ballast"); }

 private:
  std::filesystem::path dir_;
  std::filesystem::path marker_;
  std::unique_ptr<Process> holder_;
  bool ready_ = false;
};

// A message body of about 3 KiB (under messages.max_payload_bytes), numbered.
std::string payload(int n) {
  return "{\"n\":" + std::to_string(n) + ",\"pad\":\"" + std::string(3000, 'p') + "\"}";
}

int number_of(const Message& m) {
  return static_cast<int>(boost::json::parse(m.data).at("n").as_int64());
}

TEST(DiskFull, RefusesNewMessagesWhenTheDiskFillsAndLosesNothingAccepted) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a private mount namespace and a tmpfs";
  SmallDisk disk;
  if (!disk.ready()) {
    GTEST_SKIP() << "cannot mount a tmpfs in a private mount namespace here (unshare --mount)";
  }
  HeraldServer server({"--data_dir=" + (disk.dir() / "data").string(),
                       "--storage.min_free_mb=" + std::to_string(kReserveMiB)},
                      {}, disk.enter());
  Sender sender(server.http_port());
  const std::string device_id = "phone-full";
  const auto token = sender.register_device(kNewsApp, device_id);
  auto device = std::make_unique<TestDevice>(server, device_id, token);
  ASSERT_TRUE(device->wait_connected(kSafetyTimeout));

  std::map<std::string, int> accepted;  // message id -> n
  int n = 0;
  // Sends message n; on 200 records it and waits until the device has it.
  auto send = [&]() -> PushOutcome {
    const auto outcome = sender.push(kNewsApp, {device_id}, payload(n));
    if (outcome.accepted()) {
      accepted[outcome.id()] = n;
      EXPECT_GE(device->inbox().wait_for(accepted.size(), kSafetyTimeout), accepted.size())
          << "message " << n << " accepted but not delivered";
    }
    ++n;
    return outcome;
  };

  // Plenty of space: accepted.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(send().accepted());

  // Fill the disk to just above the reserve: still accepted.
  const auto reserve = kReserveMiB * kMiB;
  ASSERT_GT(disk.free_bytes(), reserve + 2 * kMiB);
  disk.add_ballast(disk.free_bytes() - reserve - kMiB);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(send().accepted()) << "refused above the reserve";

  // Below the reserve: heraldd notices at its next free-space check (once a second) and refuses.
  disk.add_ballast(2 * kMiB);
  ASSERT_LT(disk.free_bytes(), reserve);
  PushOutcome refused;
  const auto deadline = std::chrono::steady_clock::now() + kSafetyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    refused = send();
    if (!refused.accepted()) break;
  }
  ASSERT_EQ(refused.status, 507) << boost::json::serialize(refused.body);
  EXPECT_EQ(refused.body.at("error").at("code").as_string(), "storage_full");
  // Refused again, not once by chance; and the device stays connected and served.
  EXPECT_EQ(send().status, 507);
  const std::size_t accepted_while_filling = accepted.size();
  EXPECT_GE(accepted_while_filling, 40u);

  // Space returns: a sender retrying as told (here every 50 ms, not Retry-After's 30 s) is
  // accepted again within a free-space check.
  disk.remove_ballast();
  PushOutcome again;
  const auto resume_deadline = std::chrono::steady_clock::now() + kSafetyTimeout;
  while (std::chrono::steady_clock::now() < resume_deadline) {
    again = send();
    if (again.status != 507) break;
    std::this_thread::sleep_for(50ms);  // the sender's retry pause, not a synchronisation
  }
  ASSERT_TRUE(again.accepted()) << again.status << " " << boost::json::serialize(again.body);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(send().accepted());

  // Exactly once so far, as the device saw it.
  auto exactly_once = [&](const std::vector<Message>& got) {
    std::set<std::string> ids;
    for (const auto& m : got) {
      EXPECT_TRUE(ids.insert(m.id).second) << "message " << m.id << " delivered twice";
      auto it = accepted.find(m.id);
      ASSERT_NE(it, accepted.end()) << "message " << m.id << " delivered but never accepted";
      EXPECT_EQ(number_of(m), it->second);
    }
    EXPECT_EQ(ids.size(), accepted.size()) << "an accepted message is missing";
  };
  exactly_once(device->inbox().messages());

  // kill -9 and restart on the same small disk; a device with no cursor reads the whole inbox.
  device.reset();
  server.kill9();
  server.restart();
  TestDevice reader(server, device_id, token);
  ASSERT_TRUE(reader.wait_connected(kSafetyTimeout));
  ASSERT_GE(reader.inbox().wait_for(accepted.size(), kSafetyTimeout), accepted.size());
  exactly_once(reader.inbox().messages());
  RecordProperty("accepted", static_cast<int>(accepted.size()));
  RecordProperty("refused", n - static_cast<int>(accepted.size()));
}

}  // namespace
}  // namespace herald::testing
