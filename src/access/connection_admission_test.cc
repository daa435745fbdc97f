#include "access/connection_admission.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/ip/address.hpp>

namespace herald::access {
namespace {

using boost::asio::ip::make_address;

// What the process writes to stderr (the log) while it lives.
class CapturedStderr {
 public:
  CapturedStderr() : file_(std::tmpfile()), saved_(::dup(STDERR_FILENO)) {
    ::fflush(stderr);
    ::dup2(::fileno(file_), STDERR_FILENO);
  }
  ~CapturedStderr() {
    restore();
    std::fclose(file_);
  }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;

  // Restores stderr and returns what was written to it.
  std::string take() {
    restore();
    std::string text;
    std::rewind(file_);
    std::array<char, 4096> chunk{};
    while (const auto n = std::fread(chunk.data(), 1, chunk.size(), file_))
      text.append(chunk.data(), n);
    return text;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_;
};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

AccessOptions options(std::uint32_t rate_per_s, std::uint32_t burst, std::size_t cap) {
  AccessOptions o;
  o.connect_rate_per_s = rate_per_s;
  o.connect_burst = burst;
  o.max_unauthenticated = cap;
  return o;
}

TEST(ConnectionAdmission, CountsRefusalsAndLogsThemAtMostOncePerTenSeconds) {
  AccessMetrics metrics;
  ConnectionAdmission admission(options(1, 2, 0), metrics);
  const auto flooder = make_address("198.51.100.7");
  CapturedStderr log;
  int admitted = 0;
  for (int i = 0; i < 10'000; ++i) admitted += admission.admit_source(flooder, 1'000) ? 1 : 0;
  for (int i = 0; i < 10'000; ++i) admitted += admission.admit_source(flooder, 5'000) ? 1 : 0;
  // 10 s after the first line: the bucket is full again (2), the third try writes a second line.
  for (int i = 0; i < 3; ++i) admitted += admission.admit_source(flooder, 11'001) ? 1 : 0;
  const std::string text = log.take();
  EXPECT_EQ(admitted, 2 + 2 + 2);  // the burst at 1 s, the refill by 5 s (capped), by 11 s
  EXPECT_EQ(metrics.refused_source_rate_total.load(), 9'998u + 9'998u + 1u);
  EXPECT_EQ(count_of(text, "event=connections_refused"), 2u) << text;
  EXPECT_NE(text.find("source=198.51.100.7"), std::string::npos) << text;
}

TEST(ConnectionAdmission, CountsEvictionsAndLogsThem) {
  AccessMetrics metrics;
  ConnectionAdmission admission(options(0, 1, 2), metrics);
  std::array<int, 2> a{}, b{}, c{};
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, a.data()), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, b.data()), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, c.data()), 0);
  CapturedStderr log;
  admission.enter_pending(a[0], 0);
  admission.enter_pending(b[0], 0);
  EXPECT_EQ(metrics.unauthenticated_evicted_total.load(), 0u);
  admission.enter_pending(c[0], 0);  // evicts a
  EXPECT_EQ(metrics.unauthenticated_evicted_total.load(), 1u);
  admission.leave_pending(a[0]);  // a closes after its end of stream
  admission.leave_pending(b[0]);  // b authenticates
  admission.leave_pending(c[0]);  // c closes
  EXPECT_EQ(count_of(log.take(), "unauthenticated_evicted=1"), 1u);
  for (auto fds : {a, b, c}) {
    ::close(fds[0]);
    ::close(fds[1]);
  }
}

TEST(ConnectionAdmission, ZeroSettingsTurnBothGuardsOff) {
  AccessMetrics metrics;
  ConnectionAdmission admission(options(0, 1, 0), metrics);
  for (int i = 0; i < 10'000; ++i) EXPECT_TRUE(admission.admit_source(make_address("::1"), 0));
  std::array<int, 2> a{};
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, a.data()), 0);
  for (int i = 0; i < 100; ++i) {
    admission.enter_pending(a[0], 0);
    admission.leave_pending(a[0]);
  }
  EXPECT_EQ(metrics.unauthenticated_evicted_total.load(), 0u);
  EXPECT_EQ(metrics.refused_source_rate_total.load(), 0u);
  ::close(a[0]);
  ::close(a[1]);
}

}  // namespace
}  // namespace herald::access
