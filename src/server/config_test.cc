#include "server/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

namespace herald::server {
namespace {

Config load(std::vector<std::string> args) {
  std::vector<const char*> argv = {"heraldd"};
  for (const auto& a : args) argv.push_back(a.c_str());
  bool help = false;
  std::string text;
  return load_config(static_cast<int>(argv.size()), argv.data(), help, text);
}

std::string error_of(std::vector<std::string> args) {
  try {
    load(std::move(args));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsNeedNoFile) {
  const Config c = load({});
  EXPECT_EQ(c.access.listen_port, 7700);
  EXPECT_EQ(c.http.listen_port, 7780);
  EXPECT_EQ(c.storage.durability, "sync");
  EXPECT_TRUE(c.apps.empty());
}

TEST(Config, FileSettingsAreRead) {
  const auto path = write_file("herald-config-test.toml", R"(
data_dir = "/var/lib/herald"
[access]
listen = "127.0.0.1:9000"
heartbeat_max_s = 900
[storage]
durability = "fast"
[[apps]]
id = "news"
keys = ["news-key-0123456789"]
)");
  const Config c = load({"--config", path.string()});
  EXPECT_EQ(c.data_dir, "/var/lib/herald");
  EXPECT_EQ(c.access.listen_address, "127.0.0.1");
  EXPECT_EQ(c.access.listen_port, 9000);
  EXPECT_EQ(c.access.heartbeat_max_s, 900u);
  EXPECT_EQ(c.storage.durability, "fast");
  ASSERT_EQ(c.apps.size(), 1u);
  EXPECT_EQ(c.apps[0].id, "news");
}

TEST(Config, FlagsOverrideTheFileWhereverTheyStand) {
  const auto path =
      write_file("herald-config-test2.toml", "[access]\nlisten = \"127.0.0.1:9000\"\n");
  const Config c = load({"--access.listen=0.0.0.0:9100", "--config", path.string()});
  EXPECT_EQ(c.access.listen_port, 9100);
  EXPECT_EQ(c.access.listen_address, "0.0.0.0");
}

TEST(Config, ErrorsNameTheSetting) {
  EXPECT_NE(error_of({"--access.listen=nonsense"}).find("access.listen"), std::string::npos);
  EXPECT_NE(error_of({"--threads=-1"}).find("threads"), std::string::npos);
  EXPECT_NE(error_of({"--no.such=1"}).find("no.such"), std::string::npos);
  EXPECT_NE(error_of({"--storage.durability=maybe"}).find("storage.durability"), std::string::npos);
  EXPECT_NE(error_of({"--access.heartbeat_min_s=100", "--access.heartbeat_max_s=50"})
                .find("access.heartbeat_min_s"),
            std::string::npos);
  EXPECT_NE(error_of({"--app=news:short"}).find("apps.keys"), std::string::npos);
}

TEST(Config, CapacityDefaultsToMaxConnectionsAndMayNotExceedIt) {
  EXPECT_EQ(load({"--access.max_connections=50"}).access.effective_capacity(), 50u);
  EXPECT_EQ(
      load({"--access.max_connections=50", "--access.capacity=40"}).access.effective_capacity(),
      40u);
  EXPECT_NE(
      error_of({"--access.max_connections=50", "--access.capacity=51"}).find("access.capacity"),
      std::string::npos);
  EXPECT_NE(error_of({"--access.drain_rate_per_s=0"}).find("access.drain_rate_per_s"),
            std::string::npos);
  EXPECT_NE(error_of({"--access.drain_deadline_s=0"}).find("access.drain_deadline_s"),
            std::string::npos);
}

TEST(Config, TlsNeedsACertificateAndAKey) {
  EXPECT_FALSE(load({}).tls.access);
  EXPECT_FALSE(load({}).http.tls);
  EXPECT_NE(error_of({"--access.tls=true"}).find("needs tls.cert_file and tls.key_file"),
            std::string::npos);
  EXPECT_NE(error_of({"--http.tls=true", "--tls.cert_file=c.pem"}).find("http.tls"),
            std::string::npos);
  EXPECT_NE(error_of({"--access.tls=yes"}).find("expected true or false"), std::string::npos);
  EXPECT_NE(error_of({"--tls.ticket_secret=short"}).find("tls.ticket_secret"), std::string::npos);
  const Config c = load(
      {"--access.tls=true", "--http.tls=false", "--tls.cert_file=c.pem", "--tls.key_file=k.pem"});
  EXPECT_TRUE(c.tls.access);
  EXPECT_FALSE(c.http.tls);
  EXPECT_EQ(c.tls.cert_file, "c.pem");
}

TEST(Config, TlsSettingsAreReadFromTheFile) {
  const auto path = write_file("herald-config-tls.toml",
                               "[access]\ntls = true\n[http]\ntls = true\n"
                               "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"
                               "ticket_lifetime_s = 3600\n");
  const Config c = load({"--config", path.string()});
  EXPECT_TRUE(c.tls.access);
  EXPECT_TRUE(c.http.tls);
  EXPECT_EQ(c.tls.key_file, "k.pem");
  EXPECT_EQ(c.tls.ticket_lifetime_s, 3600u);
}

TEST(Config, AFileWithASyntaxErrorNamesItsLine) {
  const auto path = write_file("herald-config-test3.toml", "data_dir = \"x\"\n[access\n");
  const auto error = error_of({"--config", path.string()});
  EXPECT_NE(error.find(":2:"), std::string::npos) << error;
}

TEST(Config, AppWebhookSettingsAreKeysOfTheAppsTable) {
  const auto path = write_file("herald-config-test-webhook.toml", R"(
[upstream]
batch_max_messages = 50
retry_max_ms = 30000
[[apps]]
webhook_url = "http://backend.internal:8080/herald/upstream?v=1"
webhook_secret = "0123456789abcdef0123456789abcdef-secret"
upstream_max_pending = 5000
upstream_ttl_s = 86400
id = "news"
keys = ["news-key-0123456789"]
[[apps]]
id = "chat"
keys = ["chat-key-0123456789"]
)");
  const Config c = load({"--config", path.string()});
  EXPECT_EQ(c.upstream.batch_max_messages, 50u);
  EXPECT_EQ(c.upstream.retry_max_ms, 30'000u);
  EXPECT_EQ(c.upstream.retry_initial_ms, 500u);
  ASSERT_EQ(c.app_upstream.size(), 1u);
  const auto& news = c.app_upstream.at("news");
  EXPECT_EQ(news.webhook_url, "http://backend.internal:8080/herald/upstream?v=1");
  EXPECT_EQ(news.webhook_secret, "0123456789abcdef0123456789abcdef-secret");
  EXPECT_EQ(news.upstream_max_pending, 5000u);
  EXPECT_EQ(news.upstream_ttl_s, 86'400);
}

TEST(Config, AppSettingFlagsApplyToTheirAppWhereverTheyStand) {
  const Config c =
      load({"--apps.news.webhook_url=http://127.0.0.1:9/hook", "--app=news:news-key-0123456789",
            "--apps.my.app.upstream_ttl_s=60", "--apps.my.app.webhook_url=http://[::1]:9/",
            "--app=my.app:key-0123456789abcdef"});
  ASSERT_EQ(c.app_upstream.size(), 2u);
  EXPECT_EQ(c.app_upstream.at("news").webhook_url, "http://127.0.0.1:9/hook");
  EXPECT_EQ(c.app_upstream.at("news").upstream_max_pending, 100'000u);
  EXPECT_EQ(c.app_upstream.at("news").upstream_ttl_s, 7 * 86'400);
  EXPECT_EQ(c.app_upstream.at("my.app").upstream_ttl_s, 60);
}

TEST(Config, AnAppsBoundAndTtlNeedNoWebhookUrlForAWebhookSetThroughTheAdminApi) {
  const Config c = load({"--app=news:news-key-0123456789", "--apps.news.upstream_max_pending=10",
                         "--apps.news.upstream_ttl_s=60"});
  EXPECT_EQ(c.app_upstream.at("news").webhook_url, "");
  EXPECT_EQ(c.app_upstream.at("news").upstream_max_pending, 10u);
  EXPECT_EQ(c.app_upstream.at("news").upstream_ttl_s, 60);
}

TEST(Config, AppFlagsReplaceTheFilesAppsWithTheirWebhooks) {
  const auto path = write_file("herald-config-test-webhook2.toml", R"(
[[apps]]
id = "news"
keys = ["news-key-0123456789"]
webhook_url = "http://127.0.0.1:9/hook"
)");
  const Config c = load({"--config", path.string(), "--app=chat:chat-key-0123456789"});
  EXPECT_TRUE(c.app_upstream.empty());
}

TEST(Config, WebhookErrorsNameTheSettingAndTheApp) {
  const std::string app = "--app=news:news-key-0123456789";
  const auto https = error_of({app, "--apps.news.webhook_url=https://backend/hook"});
  EXPECT_NE(https.find("apps.webhook_url"), std::string::npos) << https;
  EXPECT_NE(https.find("'news'"), std::string::npos) << https;
  EXPECT_NE(https.find("https is not supported"), std::string::npos) << https;
  EXPECT_NE(error_of({app, "--apps.news.webhook_url=ftp://backend/"}).find("apps.webhook_url"),
            std::string::npos);
  EXPECT_NE(error_of({app, "--apps.news.webhook_url=backend:80"}).find("apps.webhook_url"),
            std::string::npos);
  EXPECT_NE(error_of({app, "--apps.news.webhook_url=http://h:0/"}).find("apps.webhook_url"),
            std::string::npos);
  EXPECT_NE(error_of({app, "--apps.news.webhook_secret=short"}).find("apps.webhook_secret"),
            std::string::npos);
  EXPECT_NE(error_of({app, "--apps.news.upstream_ttl_s=0"}).find("apps.upstream_ttl_s"),
            std::string::npos);
  // Settings that would do nothing, for apps that do not exist or have no webhook.
  EXPECT_NE(error_of({app, "--apps.chat.webhook_url=http://h/"}).find("no app 'chat'"),
            std::string::npos);
  EXPECT_NE(error_of({app, "--apps.news.no_such=1"}).find("apps.news.no_such"), std::string::npos);
  EXPECT_NE(error_of({app, "--apps.news.webhook_secret=" + std::string(32, 's')})
                .find("webhook_url is not"),
            std::string::npos);
  EXPECT_NE(error_of({"--upstream.retry_initial_ms=9000", "--upstream.retry_max_ms=1000"})
                .find("upstream.retry_initial_ms"),
            std::string::npos);
}

TEST(Config, GeneratedWebhookSecretsLiveInTheDataDirectory) {
  EXPECT_EQ(webhook_secret_path("/var/lib/herald", "news"), "/var/lib/herald/webhook_secret.news");
}

TEST(Config, DocumentationListsEveryAppSettingWithItsDefault) {
  std::ifstream in(std::filesystem::path(HERALD_SOURCE_DIR) / "docs" / "configuration.md");
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_NE(doc.str().find(app_settings_markdown()), std::string::npos)
      << "docs/configuration.md is out of date; its app settings table must be:\n"
      << app_settings_markdown();
}

TEST(Config, DeploymentPeersComeFromATomlArrayOrRepeatedFlagsWhichReplaceIt) {
  const auto path = write_file("herald-config-peers-test.toml", R"(
[deployment]
peer = ["10.0.0.2:7780", "node-c.internal:7780"]
)");
  Config c = load({"--config", path.string()});
  ASSERT_EQ(c.deployment.peers.size(), 2u);
  EXPECT_EQ(c.deployment.peers[1].host, "node-c.internal");
  EXPECT_EQ(c.deployment.peers[1].port, 7780);
  c = load({"--config", path.string(), "--deployment.peer=10.0.0.9:1", "--deployment.peer",
            "[fd00::9]:2"});
  ASSERT_EQ(c.deployment.peers.size(), 2u);
  EXPECT_EQ(c.deployment.peers[0].host, "10.0.0.9");
  EXPECT_EQ(c.deployment.peers[1].host, "fd00::9");
  EXPECT_NE(error_of({"--deployment.peer=nohost"}).find("deployment.peer"), std::string::npos);
}

TEST(Config, AdvertisedEndpointsMustBeIpLiteralsWithAPort) {
  const Config c = load({"--access.advertise=192.0.2.1:7700,[2001:db8::1]:443"});
  ASSERT_EQ(c.advertise.size(), 2u);
  EXPECT_EQ(c.advertise[1].host, "2001:db8::1");
  EXPECT_EQ(c.advertise[1].port, 443);
  EXPECT_NE(error_of({"--access.advertise=push.example.com:7700"}).find("not an IP address"),
            std::string::npos);
  EXPECT_NE(error_of({"--access.advertise=192.0.2.1:0"}).find("port 0"), std::string::npos);
  EXPECT_NE(error_of({"--node_name=a\nb"}).find("node_name"), std::string::npos);
}

TEST(Config, DocumentationListsEverySettingWithItsDefault) {
  std::ifstream in(std::filesystem::path(HERALD_SOURCE_DIR) / "docs" / "configuration.md");
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_NE(doc.str().find(settings_markdown()), std::string::npos)
      << "docs/configuration.md is out of date; its table must be:\n"
      << settings_markdown();
}

}  // namespace
}  // namespace herald::server
