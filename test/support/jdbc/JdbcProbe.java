/*
 * A JDBC client for the integration tests: connects with the URL, user and password given on the
 * command line (the agent's token as the password), then runs one command per line of stdin and
 * prints what came back, one line per row or result:
 *
 *   ROW <col1>|<col2>|…      a result row (getString of each column; NULL as \N)
 *   COUNT <n>                an update count
 *   ERR <SQLSTATE> <message> a refusal or error (first line of the message); the connection goes on
 *   OK                       a command without a result
 *
 * Commands: any SQL text (Statement.execute); `repeat <n> <sql with one ? parameter>` runs one
 * PreparedStatement n times with the parameter 1…n (past the driver's prepareThreshold, so
 * PostgreSQL's pgJDBC switches to named server-side statements and binary transfer); `begin`,
 * `commit`, `rollback`.
 *
 * Run with the source launcher: java -cp <driver.jar> JdbcProbe.java <url> <user> <password>
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public class JdbcProbe {
  public static void main(String[] args) throws Exception {
    Connection c;
    try {
      c = DriverManager.getConnection(args[0], args[1], args[2]);
    } catch (SQLException e) {
      System.out.println("CONNECT-ERR " + e.getSQLState() + " " + firstLine(e.getMessage()));
      System.exit(2);
      return;
    }
    try (c; BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.isBlank()) continue;
        try {
          run(c, line);
        } catch (SQLException e) {
          System.out.println("ERR " + e.getSQLState() + " " + firstLine(e.getMessage()));
        }
        System.out.flush();
      }
    }
  }

  static void run(Connection c, String line) throws SQLException {
    if (line.equals("begin")) {
      c.setAutoCommit(false);
      System.out.println("OK");
    } else if (line.equals("commit")) {
      c.commit();
      c.setAutoCommit(true);
      System.out.println("OK");
    } else if (line.equals("rollback")) {
      c.rollback();
      c.setAutoCommit(true);
      System.out.println("OK");
    } else if (line.startsWith("repeat ")) {
      String[] p = line.split(" ", 3);
      int n = Integer.parseInt(p[1]);
      try (PreparedStatement ps = c.prepareStatement(p[2])) {
        for (int i = 1; i <= n; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            print(rs);
          }
        }
      }
    } else {
      try (Statement st = c.createStatement()) {
        if (st.execute(line)) {
          try (ResultSet rs = st.getResultSet()) {
            print(rs);
          }
        } else if (st.getUpdateCount() >= 0) {
          System.out.println("COUNT " + st.getUpdateCount());
        } else {
          System.out.println("OK");
        }
      }
    }
  }

  static void print(ResultSet rs) throws SQLException {
    int n = rs.getMetaData().getColumnCount();
    while (rs.next()) {
      StringBuilder b = new StringBuilder("ROW ");
      for (int i = 1; i <= n; i++) {
        if (i > 1) b.append('|');
        String v = rs.getString(i);
        b.append(v == null ? "\\N" : v);
      }
      System.out.println(b);
    }
  }

  static String firstLine(String s) {
    if (s == null) return "";
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
