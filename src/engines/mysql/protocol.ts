/**
 * MySQL / MariaDB client/server protocol (protocol 4.1, HandshakeV10), socket-free.
 *
 * - MySQL: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html
 * - MariaDB: https://mariadb.com/kb/en/clientserver-protocol/
 *
 * The gateway sits between two connections and speaks both sides:
 *
 * - toward the agent it is the **server**: `ClientParser` reads what the client sends (handshake
 *   response, authentication data, commands) and `server.*` builds what the gateway answers itself
 *   (HandshakeV10, AuthSwitchRequest to `mysql_clear_password`, OK, ERR, EOF, result sets);
 * - toward the target it is the **client**: `PacketParser` frames what the server sends,
 *   `parseGreeting` / `parseAuthPhasePacket` read the connection phase, `ResponseReader` follows each
 *   command's answer packet by packet (result sets, multi-results, LOCAL INFILE, prepared
 *   statements), and `client.*` builds the handshake response and commands.
 *
 * Everything is a logical packet: `PacketParser` reassembles payloads split over 16 MiB packets and
 * hands out each with its `raw` bytes, a view of the pushed chunk when it arrived whole (no copy),
 * so a proxy forwards what it does not need to change untouched. Serializers return payloads;
 * `Sequence` frames them with the right sequence ids (`encodePacket` does it by hand). Parsers are
 * bounded (a declared length beyond the limit fails at the header, before any data is buffered) and
 * strict: any malformation throws `ProtocolError` (`ERR_PROTOCOL`) and a stateful parser stays failed.
 *
 * A proxy's command loop, in short: `ClientParser` yields a command; the engine classifies and
 * authorizes it, then forwards `cmd.raw` (sequence id 0) upstream and follows the answer with
 * `new ResponseReader(responseKind(cmd)!, { capabilities })`, reading one upstream packet at a time
 * until `done`, forwarding each packet's `raw` (or a re-serialized, masked row framed with the
 * packet's own sequence id). COM_STMT_PREPARE_OK goes to `ClientParser.registerStatement()` so that
 * the parameters of later COM_STMT_EXECUTEs can be decoded; a LOCAL INFILE request needs
 * `ClientParser.expectLocalInfileData()` and `ResponseReader.localInfileSent()` (or a refusal: an
 * empty packet sent upstream instead of the file).
 */
export * from './protocol/constants.js';
export {
  ProtocolError,
  PacketParser,
  PayloadReader,
  PayloadWriter,
  Sequence,
  encodePacket,
  physicalPacketCount,
  MAX_ALLOWED_PACKET_LIMIT,
  type Packet,
  type PacketParserOptions,
} from './protocol/packet.js';
export * from './protocol/values.js';
export * from './protocol/client.js';
export * from './protocol/server.js';
