import com.couchbase.mock.Bucket;
import com.couchbase.mock.BucketConfiguration;
import com.couchbase.mock.CouchbaseMock;
import com.couchbase.mock.deps.com.google.gson.stream.JsonReader;
import com.couchbase.mock.deps.com.google.gson.stream.JsonToken;
import com.couchbase.mock.memcached.CompressionMode;
import com.couchbase.mock.memcached.Item;
import com.couchbase.mock.memcached.MemcachedConnection;
import com.couchbase.mock.memcached.MemcachedServer;
import com.couchbase.mock.memcached.protocol.BinaryCommand;
import com.couchbase.mock.memcached.protocol.BinaryResponse;
import com.couchbase.mock.memcached.protocol.BinaryStoreCommand;
import com.couchbase.mock.memcached.protocol.BinarySubdocMultiCommand;
import com.couchbase.mock.memcached.protocol.BinarySubdocMultiMutationCommand;
import com.couchbase.mock.memcached.protocol.ErrorCode;
import java.io.IOException;
import java.io.StringReader;
import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Starts CouchbaseMock as a one-node cluster with one Couchbase bucket on fixed ports.
 *
 * <p>The mock's own command line gives each node a random KV (memcached) port; the Couchbase SDKs
 * of today bootstrap over KV, so a fixed port keeps the connection string stable across restarts.
 * CCCP (cluster config over KV) is switched on, as the mock's {@code --cccp} flag does.
 *
 * <p>With {@code --strict}, every KV command first passes the limits Couchbase Server enforces and
 * the mock does not, so a test against the mock fails where production would: at most 16 specs
 * in one sub-document multi-mutation (SUBDOC_INVALID_COMBO), keys of at most 250 bytes (EINVAL),
 * documents of at most 20 MiB, also after a sub-document mutation (E2BIG; estimated as the stored
 * size plus every spec's value, which refuses a little early, never late), and strict JSON (RFC
 * 8259: no NaN, Infinity or other lenient forms) in sub-document values (SUBDOC_VALUE_CANTINSERT)
 * and in documents flagged as JSON (EINVAL: Server would store them as binary, and every later
 * sub-document operation on them would fail).
 *
 * <p>Usage: {@code java -cp CouchbaseMock.jar:classes JobtrailCouchbaseMock HOST HTTP_PORT KV_PORT
 * BUCKET [--strict]}
 */
public final class JobtrailCouchbaseMock {
  static final int MAX_SPECS = 16;
  static final int MAX_KEY_BYTES = 250;
  static final int MAX_DOCUMENT_BYTES = 20 * 1024 * 1024;
  // The common flags' format nibble the SDKs set on JSON documents (0x02 << 24).
  static final int JSON_FORMAT = 2;

  private JobtrailCouchbaseMock() {}

  public static void main(String[] args) throws Exception {
    boolean strict = args.length == 5 && args[4].equals("--strict");
    if (args.length != 4 && !strict) {
      System.err.println("usage: JobtrailCouchbaseMock HOST HTTP_PORT KV_PORT BUCKET [--strict]");
      System.exit(2);
    }
    String host = args[0];
    int httpPort = Integer.parseInt(args[1]);
    int kvPort = Integer.parseInt(args[2]);
    String bucket = args[3];

    Field cccp = CouchbaseMock.class.getDeclaredField("cccpBootstrap");
    cccp.setAccessible(true);
    cccp.setBoolean(null, true);

    // Built by hand: the mock's bucket-spec constructors drop bucketStartPort when copying configs.
    BucketConfiguration config = new BucketConfiguration();
    config.type = Bucket.BucketType.COUCHBASE;
    config.name = bucket;
    config.password = "";
    config.hostname = host;
    config.numNodes = 1;
    config.numReplicas = 0;
    config.numVBuckets = 1024;
    config.bucketStartPort = kvPort;
    CouchbaseMock mock = new CouchbaseMock(httpPort, List.of(config));
    mock.start();
    mock.waitForStartup();
    if (strict) {
      for (MemcachedServer server : mock.getBuckets().get(bucket).getServers()) {
        enforceServerLimits(server);
      }
    }
    System.out.printf(
        "couchbase mock ready: couchbase://%s:%d bucket=%s rest=http://%s:%d strict=%b%n",
        host, mock.getCarrierPort(bucket), bucket, host, mock.getHttpPort(), strict);
    System.out.flush();
    new CountDownLatch(1).await(); // runs until the process is signalled
  }

  /**
   * Puts a limit check in front of each of the server's command executors. The executor interface
   * is package-private: the wrappers are proxies of it, and the originals are called reflectively.
   */
  static void enforceServerLimits(MemcachedServer server) throws ReflectiveOperationException {
    Field field = MemcachedServer.class.getDeclaredField("executors");
    field.setAccessible(true);
    Object executors = field.get(server);
    Class<?> type = executors.getClass().getComponentType();
    Method execute = type.getDeclaredMethod(
        "execute", BinaryCommand.class, MemcachedServer.class, MemcachedConnection.class);
    execute.setAccessible(true);
    for (int i = 0; i < Array.getLength(executors); i++) {
      Object inner = Array.get(executors, i);
      if (inner == null) {
        continue;
      }
      Object checked = Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type},
          (proxy, method, args) -> {
            if (!method.getName().equals("execute")) {
              return method.invoke(inner, args);
            }
            BinaryCommand command = (BinaryCommand) args[0];
            MemcachedConnection connection = (MemcachedConnection) args[2];
            ErrorCode refused = refusal(command, (MemcachedServer) args[1], connection.snappyMode());
            if (refused != null) {
              return new BinaryResponse(command, refused);
            }
            try {
              return execute.invoke(inner, args);
            } catch (InvocationTargetException e) {
              throw e.getCause();
            }
          });
      Array.set(executors, i, checked);
    }
  }

  /** The error Couchbase Server would answer `command` with, or null when it would accept it. */
  static ErrorCode refusal(BinaryCommand command, MemcachedServer server, CompressionMode mode)
      throws java.net.ProtocolException {
    String key = command.getKey();
    if (key != null && key.getBytes(StandardCharsets.UTF_8).length > MAX_KEY_BYTES) {
      return ErrorCode.EINVAL;
    }
    if (command instanceof BinaryStoreCommand) {
      Item item = ((BinaryStoreCommand) command).getItem(mode);
      byte[] value = item.getValue();
      if (value.length > MAX_DOCUMENT_BYTES) {
        return ErrorCode.E2BIG;
      }
      boolean json = (item.getDatatype() & 0x01) != 0 || (item.getFlags() >>> 24) == JSON_FORMAT;
      if (json && !strictJson(new String(value, StandardCharsets.UTF_8))) {
        return ErrorCode.EINVAL;
      }
    }
    if (command instanceof BinarySubdocMultiMutationCommand) {
      List<BinarySubdocMultiCommand.MultiSpec> specs =
          ((BinarySubdocMultiCommand) command).getLookupSpecs();
      if (specs.size() > MAX_SPECS) {
        return ErrorCode.SUBDOC_INVALID_COMBO;
      }
      Item stored = server.getCache(command).get(command.getKeySpec());
      long size = stored == null ? 0 : stored.getValue().length;
      for (BinarySubdocMultiCommand.MultiSpec spec : specs) {
        String value = spec.getValue();
        if (value == null || value.isEmpty()) {
          continue;
        }
        // Multi-value array operations send "a,b,c": valid exactly when "[a,b,c]" is.
        if (!strictJson("[" + value + "]")) {
          return ErrorCode.SUBDOC_VALUE_CANTINSERT;
        }
        size += value.getBytes(StandardCharsets.UTF_8).length;
      }
      if (size > MAX_DOCUMENT_BYTES) {
        return ErrorCode.E2BIG;
      }
    }
    return null;
  }

  /** Whether `text` is exactly one JSON value, read without Gson's lenient extensions. */
  static boolean strictJson(String text) {
    try (JsonReader reader = new JsonReader(new StringReader(text))) {
      reader.setLenient(false);
      reader.skipValue();
      return reader.peek() == JsonToken.END_DOCUMENT;
    } catch (IOException | IllegalStateException | NumberFormatException e) {
      return false;
    }
  }
}
