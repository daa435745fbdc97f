// Test and benchmark helpers for any StreamStore (RocksDB or Redis): run one append to its
// completion. Not part of the library.
#pragma once

#include <utility>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include "storage/stream_store.h"

namespace herald::storage::testing {

struct CompletedAppend {
  boost::system::error_code ec;
  std::vector<AppendResult> results;
  bool completed = false;
};

// Runs one async_append to completion on a private io_context. The io_context only stays
// busy while the store tracks the operation as outstanding work, so `completed` also checks
// that the store keeps the handler's executor busy until it completes.
inline CompletedAppend append_and_wait(StreamStore& store, std::vector<AppendRequest> batch) {
  boost::asio::io_context io;
  CompletedAppend outcome;
  store.async_append(std::move(batch),
                     boost::asio::bind_executor(io, [&outcome](boost::system::error_code ec,
                                                               std::vector<AppendResult> results) {
                       outcome.ec = ec;
                       outcome.results = std::move(results);
                       outcome.completed = true;
                     }));
  io.run();
  return outcome;
}

struct CompletedBatch {
  boost::system::error_code ec;
  AppendOutcome outcome;
  bool completed = false;
};

// append_and_wait for an AppendBatch.
inline CompletedBatch write_and_wait(StreamStore& store, AppendBatch batch) {
  boost::asio::io_context io;
  CompletedBatch completed;
  store.async_append(std::move(batch),
                     boost::asio::bind_executor(
                         io, [&completed](boost::system::error_code ec, AppendOutcome outcome) {
                           completed.ec = ec;
                           completed.outcome = std::move(outcome);
                           completed.completed = true;
                         }));
  io.run();
  return completed;
}

}  // namespace herald::storage::testing
