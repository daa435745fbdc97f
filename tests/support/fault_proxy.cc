#include "fault_proxy.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <deque>
#include <map>
#include <mutex>
#include <span>
#include <tuple>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "protocol/frame_codec.h"

namespace herald::testing {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using protocol::FrameType;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunkBytes = 16 * 1024;

int index_of(Direction d) { return static_cast<int>(d); }

// Bytes of a valid header: the type byte and the length bytes up to the first without the
// continuation bit. Precondition: parse_frame did not call `header` broken and saw its length end.
std::size_t header_bytes(std::span<const std::uint8_t> header) {
  for (std::size_t i = 1; i < header.size(); ++i) {
    if ((header[i] & 0x80) == 0) return i + 1;
  }
  assert(false && "header_bytes: the length does not end");
  return header.size();
}

}  // namespace

const char* to_string(Direction d) { return d == Direction::kUpstream ? "upstream" : "downstream"; }

const char* to_string(FaultAction a) {
  switch (a) {
    case FaultAction::kDrop:
      return "drop";
    case FaultAction::kDelay:
      return "delay";
    case FaultAction::kCut:
      return "cut";
    case FaultAction::kStall:
      return "stall";
  }
  return "?";
}

namespace {

FaultRule make_rule(Direction d, std::optional<FrameType> t, std::uint64_t n, FaultAction a) {
  FaultRule r;
  r.direction = d;
  r.type = t;
  r.occurrence = n;
  r.action = a;
  return r;
}

}  // namespace

FaultRule FaultRule::drop(Direction d, FrameType t, std::uint64_t n) {
  return make_rule(d, t, n, FaultAction::kDrop);
}

FaultRule FaultRule::delay_by(Direction d, FrameType t, std::chrono::milliseconds delay,
                              std::uint64_t n) {
  FaultRule r = make_rule(d, t, n, FaultAction::kDelay);
  r.delay = delay;
  return r;
}

FaultRule FaultRule::cut(Direction d, FrameType t, std::uint64_t n) {
  return make_rule(d, t, n, FaultAction::kCut);
}

FaultRule FaultRule::stall(Direction d, std::optional<FrameType> t, std::uint64_t n) {
  return make_rule(d, t, n, FaultAction::kStall);
}

namespace detail {

// What a rule decided for one frame.
struct Verdict {
  std::optional<FaultAction> action;  // nullopt: forward
  std::chrono::milliseconds delay{0};
};

// Shared by the proxy (test thread side) and its connections (proxy thread). `mu` guards the
// rules, counters and log; the rest belongs to the proxy's thread.
struct FaultState {
  struct Slot {
    RuleId id = 0;
    FaultRule rule;
    std::uint64_t matched = 0;
    bool spent = false;
  };

  explicit FaultState(std::size_t max_log) : max_log_records(max_log) {}

  // A frame's header was read: counts it, lets the rules judge it.
  Verdict judge(Direction d, FrameType type) {
    std::lock_guard lock(mu);
    ++counters.seen[index_of(d)][static_cast<std::uint8_t>(type)];
    Verdict verdict;
    for (Slot& s : rules) {
      if (s.spent || s.rule.direction != d || (s.rule.type && *s.rule.type != type)) continue;
      ++s.matched;
      const bool fires = s.rule.every || s.matched == s.rule.occurrence;
      if (!s.rule.every && s.matched >= s.rule.occurrence) s.spent = true;
      if (!fires || verdict.action) continue;
      verdict.action = s.rule.action;
      verdict.delay = s.rule.delay;
      ++acted[s.id];
    }
    if (verdict.action == FaultAction::kDrop) ++counters.dropped;
    if (verdict.action == FaultAction::kDelay) ++counters.delayed;
    cv.notify_all();
    return verdict;
  }

  void record(std::span<const FrameRecord> records) {
    std::lock_guard lock(mu);
    for (const FrameRecord& r : records) {
      if (r.fate == FrameRecord::Fate::kForwarded) {
        const std::uint8_t t = r.type ? static_cast<std::uint8_t>(*r.type) : 0;
        ++counters.forwarded[index_of(r.direction)][t];
        if (!r.type) counters.raw_bytes += r.bytes;
      }
      log.push_back(r);
    }
    while (log.size() > max_log_records) log.pop_front();
    cv.notify_all();
  }

  template <typename F>
  void count(F change) {
    std::lock_guard lock(mu);
    change(counters);
    cv.notify_all();
  }

  mutable std::mutex mu;
  std::condition_variable cv;
  FaultCounters counters;
  std::vector<Slot> rules;                // in the order added
  std::map<RuleId, std::uint64_t> acted;  // frames each rule acted on, removed rules included
  RuleId next_rule = 1;
  std::deque<FrameRecord> log;
  const std::size_t max_log_records;

  // The proxy's thread only.
  std::vector<std::weak_ptr<FaultLink>> links;
  std::array<std::uint64_t, 2> resume_generation{0, 0};
  std::uint64_t next_connection = 1;
};

// One proxied connection: the device's socket, the server's, and per direction a reader and a
// writer coroutine with a bounded queue between them. The coroutines own the link through
// shared_from_this; it ends when both directions passed their FIN on, or at the first reset,
// failed write or cut (then both sockets are reset).
class FaultLink : public std::enable_shared_from_this<FaultLink> {
 public:
  FaultLink(tcp::socket device, std::shared_ptr<FaultState> state, const FaultProxyOptions& options,
            std::uint64_t id)
      : state_(std::move(state)),
        options_(options),
        id_(id),
        sockets_{tcp::socket(device.get_executor()), tcp::socket(device.get_executor())},
        pipes_{Pipe(device.get_executor()), Pipe(device.get_executor())} {
    sockets_[kDevice] = std::move(device);
  }

  void start() { asio::co_spawn(sockets_[0].get_executor(), run(), asio::detached); }

  // Resets both sockets; everything queued is lost. Proxy thread.
  void abort() {
    if (closed_) return;
    boost::system::error_code ignored;
    for (auto& s : sockets_) {
      if (s.is_open()) {
        s.set_option(asio::socket_base::linger(true, 0), ignored);
        s.close(ignored);
      }
    }
    finish();
  }

  // A resume() happened: stalled writers look again. Proxy thread.
  void wake_writers() {
    for (auto& p : pipes_) p.writer_wake.cancel();
  }

 private:
  static constexpr int kDevice = 0;
  static constexpr int kServer = 1;

  struct Piece {
    enum class Kind : std::uint8_t { kData, kStall, kCut, kFin };
    Kind kind = Kind::kData;
    std::string bytes;
    Clock::time_point release_at;
    std::uint64_t stall_generation = 0;
    // The frames whose last byte is in this piece, logged once it is written (or, for a cut
    // marker, the frame cut). Bounded: every frame takes at least 2 bytes of the piece.
    std::vector<FrameRecord> completes;
  };

  // One direction.
  struct Pipe {
    explicit Pipe(const tcp::socket::executor_type& ex) : reader_wake(ex), writer_wake(ex) {}
    std::deque<Piece> queue;
    std::size_t queued_bytes = 0;  // data bytes in `queue`
    // Timers used as events: waited on at time_point::max(), woken through cancel().
    asio::steady_timer reader_wake;
    asio::steady_timer writer_wake;
    // The frame splitter. Invariant: while body_left == 0, `header` holds the partial header of
    // the next frame (header_len < kMaxHeaderBytes bytes).
    std::array<std::uint8_t, protocol::kMaxHeaderBytes> header{};
    std::size_t header_len = 0;
    std::uint64_t body_left = 0;  // bytes of the current frame's body not read yet
    FrameRecord current;          // the frame being read
    Verdict verdict;              // its verdict
    Clock::time_point release_at;
    std::uint64_t frames = 0;  // frames read (raw chunks included)
    bool raw = false;
    bool in_write = false;  // the front piece is being written
    bool finished = false;  // the FIN was passed on
  };

  asio::awaitable<void> run() {
    const auto self = shared_from_this();
    if (!co_await connect_target()) {
      state_->count([](FaultCounters& c) { ++c.connect_failures; });
      abort();
      co_return;
    }
    boost::system::error_code ignored;  // Nagle only adds latency to a test's small frames
    for (auto& socket : sockets_) socket.set_option(tcp::no_delay(true), ignored);
    const auto ex = sockets_[0].get_executor();
    for (Direction d : {Direction::kUpstream, Direction::kDownstream}) {
      asio::co_spawn(ex, reader(d), asio::detached);
      asio::co_spawn(ex, writer(d), asio::detached);
    }
  }

  asio::awaitable<bool> connect_target() {
    asio::steady_timer deadline(sockets_[0].get_executor());
    deadline.expires_after(options_.connect_timeout);
    deadline.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->abort();
    });
    // No structured bindings in coroutines: GCC 12 mishandles them.
    const std::tuple<boost::system::error_code> result =
        co_await sockets_[kServer].async_connect(options_.target, kAwait);
    deadline.cancel();
    co_return !std::get<0>(result) && !closed_;
  }

  static int from_of(Direction d) { return d == Direction::kUpstream ? kDevice : kServer; }

  asio::awaitable<void> reader(Direction d) {
    const auto self = shared_from_this();
    Pipe& p = pipes_[index_of(d)];
    tcp::socket& from = sockets_[from_of(d)];
    std::vector<std::uint8_t> chunk(std::min(options_.buffer_bytes, kReadChunkBytes));
    for (;;) {
      // Backpressure: read only what the queue has room for.
      while (!closed_ && p.queued_bytes >= options_.buffer_bytes) {
        p.reader_wake.expires_at(Clock::time_point::max());
        co_await p.reader_wake.async_wait(kAwait);
      }
      if (closed_) co_return;
      const std::size_t room = std::min(chunk.size(), options_.buffer_bytes - p.queued_bytes);
      const std::tuple<boost::system::error_code, std::size_t> result =
          co_await from.async_read_some(asio::buffer(chunk.data(), room), kAwait);
      const boost::system::error_code ec = std::get<0>(result);
      const std::size_t n = std::get<1>(result);
      if (closed_) co_return;
      if (ec == asio::error::eof) {
        Piece fin;
        fin.kind = Piece::Kind::kFin;
        push(d, std::move(fin));
        co_return;
      }
      if (ec) {
        abort();  // a reset or an error: pass it on as a reset
        co_return;
      }
      if (!split(d, std::span<const std::uint8_t>(chunk.data(), n))) co_return;  // a cut
    }
  }

  // Splits `bytes` into frames, judges each at its header and queues what is to be written.
  // False once a cut was queued: the reader stops (the link is about to be reset).
  bool split(Direction d, std::span<const std::uint8_t> bytes) {
    Pipe& p = pipes_[index_of(d)];
    const auto now = Clock::now();
    while (!bytes.empty()) {
      if (p.raw) {
        queue_raw(d, bytes, now);
        return true;
      }
      if (p.body_left > 0) {
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(p.body_left, bytes.size()));
        if (!p.verdict.action || p.verdict.action == FaultAction::kDelay ||
            p.verdict.action == FaultAction::kStall) {
          queue_data(d, bytes.first(k), p.release_at);
        }
        bytes = bytes.subspan(k);
        p.body_left -= k;
        if (p.body_left == 0) frame_read(d);
        continue;
      }
      // A header, maybe continued from the last read.
      const std::size_t old_len = p.header_len;
      const std::size_t take = std::min(p.header.size() - old_len, bytes.size());
      std::copy_n(bytes.begin(), take, p.header.begin() + static_cast<std::ptrdiff_t>(old_len));
      const std::span<const std::uint8_t> header(p.header.data(), old_len + take);
      const protocol::ParseResult r =
          protocol::parse_frame(header, protocol::kMaxEncodableBodyBytes);
      if (r.status == protocol::ParseStatus::kBroken) {
        // Not a Herald header: from here on this direction is forwarded as it comes.
        p.raw = true;
        state_->count([](FaultCounters& c) { ++c.unparsable; });
        if (old_len > 0) queue_raw(d, std::span<const std::uint8_t>(p.header.data(), old_len), now);
        p.header_len = 0;
        continue;
      }
      if (r.status == protocol::ParseStatus::kNeedMore && r.needed_bytes == 0) {
        // The header goes on in the next read.
        assert(take == bytes.size());
        p.header_len = old_len + take;
        return true;
      }
      const std::size_t total =
          r.status == protocol::ParseStatus::kComplete ? r.frame.frame_bytes : r.needed_bytes;
      const std::size_t hlen = header_bytes(header);
      bytes = bytes.subspan(hlen - old_len);
      p.header_len = 0;
      if (!frame_header(d, std::span<const std::uint8_t>(p.header.data(), hlen), total, now)) {
        return false;
      }
      p.body_left = total - hlen;
      if (p.body_left == 0) frame_read(d);
    }
    return true;
  }

  // A frame's header is complete: judge it and queue what its verdict asks for. False on a cut.
  bool frame_header(Direction d, std::span<const std::uint8_t> header, std::size_t total,
                    Clock::time_point now) {
    Pipe& p = pipes_[index_of(d)];
    const auto type = static_cast<FrameType>(header[0]);
    p.verdict = state_->judge(d, type);
    p.current = FrameRecord{};
    p.current.connection = id_;
    p.current.direction = d;
    p.current.type = type;
    p.current.number = ++p.frames;
    p.current.bytes = total;
    p.current.read_at = now;
    p.release_at = now;
    if (!p.verdict.action) {
      queue_data(d, header, now);
      return true;
    }
    switch (*p.verdict.action) {
      case FaultAction::kDrop: {
        FrameRecord dropped = p.current;
        dropped.fate = FrameRecord::Fate::kDropped;
        dropped.settled_at = now;
        state_->record(std::span<const FrameRecord>(&dropped, 1));
        return true;
      }
      case FaultAction::kDelay:
        p.release_at = now + p.verdict.delay;
        queue_data(d, header, p.release_at);
        return true;
      case FaultAction::kCut: {
        Piece cut;
        cut.kind = Piece::Kind::kCut;
        cut.completes.push_back(p.current);
        cut.completes.back().fate = FrameRecord::Fate::kCut;
        push(d, std::move(cut));
        return false;
      }
      case FaultAction::kStall: {
        Piece stall;
        stall.kind = Piece::Kind::kStall;
        stall.stall_generation = state_->resume_generation[index_of(d)];
        push(d, std::move(stall));
        queue_data(d, header, now);
        return true;
      }
    }
    return true;
  }

  // The current frame's last byte was read: the piece that carries it logs the frame when
  // written. A dropped frame was logged at its header.
  void frame_read(Direction d) {
    Pipe& p = pipes_[index_of(d)];
    if (p.verdict.action == FaultAction::kDrop) return;
    assert(!p.queue.empty() && p.queue.back().kind == Piece::Kind::kData);
    p.queue.back().completes.push_back(p.current);
  }

  void queue_data(Direction d, std::span<const std::uint8_t> bytes, Clock::time_point release_at) {
    Pipe& p = pipes_[index_of(d)];
    // Consecutive bytes with the same release time travel together, frames ending among them
    // or not: one write for many small frames.
    // Never into the piece being written: its buffer is in the kernel's hands.
    const bool back_in_write = p.in_write && p.queue.size() == 1;
    if (!p.queue.empty() && !back_in_write && p.queue.back().kind == Piece::Kind::kData &&
        p.queue.back().release_at == release_at) {
      p.queue.back().bytes.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      p.queued_bytes += bytes.size();
      p.writer_wake.cancel();
      return;
    }
    Piece piece;
    piece.bytes.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    piece.release_at = release_at;
    push(d, std::move(piece));
  }

  void queue_raw(Direction d, std::span<const std::uint8_t> bytes, Clock::time_point now) {
    Pipe& p = pipes_[index_of(d)];
    Piece piece;
    piece.bytes.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    piece.release_at = now;
    FrameRecord r;
    r.connection = id_;
    r.direction = d;
    r.number = ++p.frames;
    r.bytes = bytes.size();
    r.read_at = now;
    piece.completes.push_back(r);
    push(d, std::move(piece));
  }

  void push(Direction d, Piece piece) {
    Pipe& p = pipes_[index_of(d)];
    p.queued_bytes += piece.bytes.size();
    p.queue.push_back(std::move(piece));
    p.writer_wake.cancel();
  }

  asio::awaitable<void> writer(Direction d) {
    const auto self = shared_from_this();
    Pipe& p = pipes_[index_of(d)];
    tcp::socket& to = sockets_[1 - from_of(d)];
    for (;;) {
      if (closed_) co_return;
      if (p.queue.empty()) {
        co_await wait(p.writer_wake, Clock::time_point::max());
        continue;
      }
      Piece& piece = p.queue.front();
      switch (piece.kind) {
        case Piece::Kind::kStall:
          if (piece.stall_generation == state_->resume_generation[index_of(d)]) {
            if (!stalled_[index_of(d)]) {
              stalled_[index_of(d)] = true;
              state_->count([](FaultCounters& c) { ++c.stalls; });
            }
            co_await wait(p.writer_wake, Clock::time_point::max());
            continue;  // resume() bumps the generation and wakes us
          }
          stalled_[index_of(d)] = false;
          p.queue.pop_front();
          continue;
        case Piece::Kind::kCut: {
          FrameRecord r = piece.completes.front();
          r.settled_at = Clock::now();
          state_->count([](FaultCounters& c) { ++c.cuts; });
          state_->record(std::span<const FrameRecord>(&r, 1));
          abort();
          co_return;
        }
        case Piece::Kind::kFin: {
          boost::system::error_code ignored;
          to.shutdown(tcp::socket::shutdown_send, ignored);
          p.finished = true;
          p.queue.pop_front();
          if (pipes_[0].finished && pipes_[1].finished) close();
          co_return;
        }
        case Piece::Kind::kData:
          break;
      }
      if (piece.release_at > Clock::now()) {
        co_await wait(p.writer_wake, piece.release_at);
        continue;
      }
      // `piece` stays at the front while it is written: the reader only appends.
      p.in_write = true;
      const std::tuple<boost::system::error_code, std::size_t> result =
          co_await asio::async_write(to, asio::buffer(piece.bytes), kAwait);
      const boost::system::error_code ec = std::get<0>(result);
      p.in_write = false;
      if (closed_) co_return;
      if (ec) {
        abort();
        co_return;
      }
      Piece done = std::move(p.queue.front());
      p.queue.pop_front();
      p.queued_bytes -= done.bytes.size();
      p.reader_wake.cancel();
      if (!done.completes.empty()) {
        const auto now = Clock::now();
        for (FrameRecord& r : done.completes) r.settled_at = now;
        state_->record(done.completes);
      }
    }
  }

  // Waits until `at` or a cancel() of `timer`, whichever comes first.
  static asio::awaitable<void> wait(asio::steady_timer& timer, Clock::time_point at) {
    timer.expires_at(at);
    // Expiry and cancel() alike end the wait; the caller looks at its state again.
    (void)co_await timer.async_wait(kAwait);
  }

  // Both FINs passed on: close both sockets (no reset).
  void close() {
    boost::system::error_code ignored;
    for (auto& s : sockets_) s.close(ignored);
    finish();
  }

  void finish() {
    if (closed_) return;
    closed_ = true;
    for (auto& p : pipes_) {
      p.reader_wake.cancel();
      p.writer_wake.cancel();
    }
    state_->count([](FaultCounters& c) { --c.open; });
  }

  const std::shared_ptr<FaultState> state_;
  const FaultProxyOptions& options_;  // the proxy's; it outlives its io_context's work
  const std::uint64_t id_;
  std::array<tcp::socket, 2> sockets_;  // [kDevice], [kServer]
  std::array<Pipe, 2> pipes_;           // [upstream], [downstream]
  std::array<bool, 2> stalled_{false, false};
  bool closed_ = false;
};

}  // namespace detail

FaultProxy::FaultProxy(FaultProxyOptions options)
    : options_(std::move(options)),
      state_(std::make_shared<detail::FaultState>(options_.max_log_records)),
      acceptor_(io_, options_.listen) {
  port_ = acceptor_.local_endpoint().port();
  start_accept();
  thread_ = std::thread([this] { io_.run(); });
}

FaultProxy::~FaultProxy() {
  io_.stop();
  thread_.join();
}

void FaultProxy::start_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      auto& s = *state_;
      bool reject = false;
      s.count([&](FaultCounters& c) {
        ++c.accepted;
        reject = c.open >= options_.max_connections;
        if (reject) {
          ++c.rejected;
        } else {
          ++c.open;
        }
      });
      if (reject) {
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        std::erase_if(s.links, [](const auto& weak) { return weak.expired(); });
        auto link = std::make_shared<detail::FaultLink>(std::move(socket), state_, options_,
                                                        s.next_connection++);
        s.links.push_back(link);
        link->start();
      }
    }
    start_accept();
  });
}

RuleId FaultProxy::add_rule(const FaultRule& rule) {
  std::lock_guard lock(state_->mu);
  const RuleId id = state_->next_rule++;
  state_->rules.push_back({id, rule, 0, false});
  state_->acted[id] = 0;
  return id;
}

void FaultProxy::remove_rule(RuleId id) {
  std::lock_guard lock(state_->mu);
  std::erase_if(state_->rules, [id](const auto& slot) { return slot.id == id; });
}

void FaultProxy::clear_rules() {
  std::lock_guard lock(state_->mu);
  state_->rules.clear();
}

void FaultProxy::resume(std::optional<Direction> direction) {
  asio::post(io_, [state = state_, direction] {
    for (Direction d : {Direction::kUpstream, Direction::kDownstream}) {
      if (!direction || *direction == d) ++state->resume_generation[static_cast<int>(d)];
    }
    for (const auto& weak : state->links) {
      if (const auto link = weak.lock()) link->wake_writers();
    }
  });
}

void FaultProxy::reset_connections() {
  asio::post(io_, [state = state_] {
    for (const auto& weak : state->links) {
      if (const auto link = weak.lock()) link->abort();
    }
  });
}

FaultCounters FaultProxy::counters() const {
  std::lock_guard lock(state_->mu);
  return state_->counters;
}

std::uint64_t FaultProxy::acted(RuleId id) const {
  std::lock_guard lock(state_->mu);
  const auto it = state_->acted.find(id);
  return it == state_->acted.end() ? 0 : it->second;
}

std::vector<FrameRecord> FaultProxy::log() const {
  std::lock_guard lock(state_->mu);
  return {state_->log.begin(), state_->log.end()};
}

bool FaultProxy::wait_for(Direction direction, FrameType type, std::uint64_t count,
                          std::chrono::milliseconds timeout) {
  return wait_until([&](const FaultCounters& c) { return c.seen_of(direction, type) >= count; },
                    timeout);
}

bool FaultProxy::wait_acted(RuleId id, std::uint64_t count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] {
    const auto it = state_->acted.find(id);
    return it != state_->acted.end() && it->second >= count;
  });
}

bool FaultProxy::wait_until(const std::function<bool(const FaultCounters&)>& done,
                            std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return done(state_->counters); });
}

}  // namespace herald::testing
