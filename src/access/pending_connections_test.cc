#include "access/pending_connections.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace herald::access {
namespace {

// A connected pair of local sockets: the server's end is filed, the peer's end shows whether it
// was shut down (a read then answers 0 at once).
class Pair {
 public:
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_.data()), 0); }
  ~Pair() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  [[nodiscard]] int fd() const { return fds_[0]; }
  // True when the server's end was shut down (end of stream), false while it is open.
  [[nodiscard]] bool shut_down() const {
    char c = 0;
    return ::recv(fds_[1], &c, 1, MSG_DONTWAIT) == 0;
  }

 private:
  std::array<int, 2> fds_{-1, -1};
};

TEST(PendingConnections, FilesUpToTheCapWithoutEvicting) {
  PendingConnections pending(3);
  std::array<Pair, 3> pairs;
  for (auto& p : pairs) EXPECT_FALSE(pending.admit(p.fd()));
  EXPECT_EQ(pending.size(), 3u);
  for (auto& p : pairs) EXPECT_FALSE(p.shut_down());
}

TEST(PendingConnections, AtTheCapTheOldestIsShutDownToAdmitTheNew) {
  PendingConnections pending(2);
  Pair a, b, c, d;
  EXPECT_FALSE(pending.admit(a.fd()));
  EXPECT_FALSE(pending.admit(b.fd()));
  EXPECT_TRUE(pending.admit(c.fd()));
  EXPECT_TRUE(a.shut_down());
  EXPECT_FALSE(b.shut_down());
  EXPECT_TRUE(pending.admit(d.fd()));
  EXPECT_TRUE(b.shut_down());
  EXPECT_FALSE(c.shut_down());
  EXPECT_FALSE(d.shut_down());
  EXPECT_EQ(pending.size(), 2u);
}

TEST(PendingConnections, AuthenticatedOnesLeaveAndAreNeverEvicted) {
  PendingConnections pending(2);
  Pair a, b, c;
  (void)pending.admit(a.fd());
  (void)pending.admit(b.fd());
  pending.remove(a.fd());  // a authenticated
  EXPECT_EQ(pending.size(), 1u);
  EXPECT_FALSE(pending.admit(c.fd()));
  EXPECT_FALSE(a.shut_down());
  EXPECT_EQ(pending.size(), 2u);
}

TEST(PendingConnections, RemovingAnEvictedOneChangesNothing) {
  PendingConnections pending(1);
  Pair a, b, c;
  (void)pending.admit(a.fd());
  ASSERT_TRUE(pending.admit(b.fd()));  // evicts a; b takes a's node
  ASSERT_TRUE(a.shut_down());
  // a's session sees its end of stream and closes: that must not remove b.
  pending.remove(a.fd());
  pending.remove(a.fd());
  EXPECT_EQ(pending.size(), 1u);
  EXPECT_TRUE(pending.admit(c.fd()));
  EXPECT_TRUE(b.shut_down());
  pending.remove(b.fd());
  EXPECT_EQ(pending.size(), 1u);
  pending.remove(-1);
  EXPECT_EQ(pending.size(), 1u);
  pending.remove(c.fd());
  EXPECT_EQ(pending.size(), 0u);
}

TEST(PendingConnections, CountingIsExactThroughEveryWayOut) {
  // After any mix of authentications, closes and evictions, a full cap is admitted again
  // without evicting anyone.
  constexpr std::size_t kCap = 8;
  PendingConnections pending(kCap);
  std::vector<std::unique_ptr<Pair>> pairs;
  std::size_t evicted = 0;
  for (std::size_t i = 0; i < 100; ++i) {
    pairs.push_back(std::make_unique<Pair>());
    evicted += pending.admit(pairs.back()->fd()) ? 1 : 0;
    if (i % 3 == 0) pending.remove(pairs[i]->fd());               // authenticated at once
    if (i % 7 == 0 && i > 5) pending.remove(pairs[i - 5]->fd());  // an older one closed
    ASSERT_LE(pending.size(), kCap);
  }
  EXPECT_GT(evicted, 0u);
  for (const auto& p : pairs) pending.remove(p->fd());
  EXPECT_EQ(pending.size(), 0u);
  std::vector<std::unique_ptr<Pair>> fresh;
  for (std::size_t i = 0; i < kCap; ++i) {
    fresh.push_back(std::make_unique<Pair>());
    EXPECT_FALSE(pending.admit(fresh.back()->fd())) << i;
  }
  EXPECT_EQ(pending.size(), kCap);
  Pair one_more;
  EXPECT_TRUE(pending.admit(one_more.fd()));
  EXPECT_TRUE(fresh.front()->shut_down());
}

TEST(PendingConnections, ZeroCapFilesNothing) {
  PendingConnections pending(0);
  Pair a;
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(pending.admit(a.fd()));
  EXPECT_EQ(pending.size(), 0u);
  EXPECT_FALSE(a.shut_down());
}

TEST(PendingConnections, ABadDescriptorIsNotFiled) {
  PendingConnections pending(4);
  EXPECT_FALSE(pending.admit(-1));
  EXPECT_EQ(pending.size(), 0u);
}

TEST(PendingConnections, ThreadsAdmittingAndRemovingKeepTheCount) {
  static constexpr std::size_t kCap = 16;
  PendingConnections pending(kCap);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pending] {
      for (int i = 0; i < 2'000; ++i) {
        Pair p;
        (void)pending.admit(p.fd());
        EXPECT_LE(pending.size(), kCap);
        // Before the descriptor closes, as a session does.
        pending.remove(p.fd());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(pending.size(), 0u);
}

}  // namespace
}  // namespace herald::access
