import com.couchbase.mock.Bucket;
import com.couchbase.mock.BucketConfiguration;
import com.couchbase.mock.CouchbaseMock;
import java.lang.reflect.Field;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Starts CouchbaseMock as a one-node cluster with one Couchbase bucket on fixed ports.
 *
 * <p>The mock's own command line gives each node a random KV (memcached) port; the Couchbase SDKs
 * of today bootstrap over KV, so a fixed port keeps the connection string stable across restarts.
 * CCCP (cluster config over KV) is switched on, as the mock's {@code --cccp} flag does.
 *
 * <p>Usage: {@code java -cp CouchbaseMock.jar:classes JobtrailCouchbaseMock HOST HTTP_PORT KV_PORT BUCKET}
 */
public final class JobtrailCouchbaseMock {
  private JobtrailCouchbaseMock() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: JobtrailCouchbaseMock HOST HTTP_PORT KV_PORT BUCKET");
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
    System.out.printf(
        "couchbase mock ready: couchbase://%s:%d bucket=%s rest=http://%s:%d%n",
        host, mock.getCarrierPort(bucket), bucket, host, mock.getHttpPort());
    System.out.flush();
    new CountDownLatch(1).await(); // runs until the process is signalled
  }
}
