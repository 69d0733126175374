//! The node's one libp2p network: TCP, Noise (XX, authenticated by the department's ed25519 node
//! key, which is the peer id), yamux. Every kind of node-to-node traffic — consensus votes, block
//! dissemination and backfill, pending transactions — is a numbered *channel* multiplexed over
//! one long-lived stream per peer, framed as `channel (u32 LE) ‖ length (u32 LE) ‖ payload`.
//!
//! Only member departments' node keys are allowed: a connection from any other key is refused
//! right after the Noise handshake (`allow_block_list`), before any frame is read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identity, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vault_protocol::crypto::{KeyPair, PublicKey};

/// The libp2p protocol carrying every channel.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/shuzi-baoxianxiang/vault/1");
/// The libp2p protocol for document transfers: one stream per transfer, so a large file never
/// holds up consensus traffic on the channel stream.
pub const FETCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/shuzi-baoxianxiang/fetch/1");
/// The largest frame accepted.
pub const MAX_FRAME: usize = 48 * 1024 * 1024;
/// Frames queued per peer before further sends to it are dropped.
const WRITER_QUEUE: usize = 4096;

/// A channel number.
pub type Channel = u32;

/// The per-peer outbound queues, shared by every clone of the network handle.
type Writers = Arc<Mutex<HashMap<PeerId, mpsc::Sender<(Channel, Bytes)>>>>;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// A bad key.
    #[error("node key: {0}")]
    Key(String),
    /// A bad address.
    #[error("address {address}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(String),
}

/// The libp2p peer id of a node key.
pub fn peer_id(key: &PublicKey) -> Result<PeerId, P2pError> {
    let pk = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .map_err(|e| P2pError::Key(e.to_string()))?;
    Ok(identity::PublicKey::from(pk).to_peer_id())
}

fn libp2p_keypair(key: &KeyPair) -> Result<identity::Keypair, P2pError> {
    identity::Keypair::ed25519_from_bytes(key.seed()).map_err(|e| P2pError::Key(e.to_string()))
}

/// How the network starts.
pub struct P2pSettings {
    /// This node's key.
    pub key: KeyPair,
    /// Where to listen.
    pub listen: String,
    /// Whom to dial: node key and address.
    pub peers: Vec<(PublicKey, String)>,
    /// Every member's node key (the only keys allowed to connect).
    pub members: Vec<PublicKey>,
    /// Channels to deliver, with their queue sizes.
    pub channels: Vec<(Channel, usize)>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<AllowedPeers>,
    stream: libp2p_stream::Behaviour,
}

enum Command {
    SetMembers(Vec<PublicKey>),
    Block(PublicKey),
}

/// The running network: send frames, learn who is connected.
#[derive(Clone)]
pub struct Network {
    control: libp2p_stream::Control,
    writers: Writers,
    members: Arc<RwLock<HashMap<PeerId, PublicKey>>>,
    connected: Arc<RwLock<HashSet<PeerId>>>,
    local: PublicKey,
    commands: mpsc::Sender<Command>,
    listen_addrs: Arc<RwLock<Vec<Multiaddr>>>,
}

/// Inbound messages of one channel: `(sender's node key, payload)`.
pub type Inbound = mpsc::Receiver<(PublicKey, Bytes)>;

impl Network {
    /// Starts the swarm. Returns the handle, one receiver per channel, and the swarm's task.
    pub async fn start(
        settings: P2pSettings,
    ) -> Result<(Network, HashMap<Channel, Inbound>, JoinHandle<()>), P2pError> {
        let keypair = libp2p_keypair(&settings.key)?;
        let local = settings.key.public();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| P2pError::Transport(e.to_string()))?
            .with_behaviour(|_| Behaviour {
                allow: allow_block_list::Behaviour::default(),
                stream: libp2p_stream::Behaviour::new(),
            })
            .map_err(|e| P2pError::Transport(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        let listen: Multiaddr =
            settings
                .listen
                .parse()
                .map_err(|e: libp2p::multiaddr::Error| P2pError::Address {
                    address: settings.listen.clone(),
                    reason: e.to_string(),
                })?;
        swarm
            .listen_on(listen)
            .map_err(|e| P2pError::Transport(e.to_string()))?;
        let mut dial = Vec::new();
        for (key, addr) in &settings.peers {
            let a: Multiaddr =
                addr.parse()
                    .map_err(|e: libp2p::multiaddr::Error| P2pError::Address {
                        address: addr.clone(),
                        reason: e.to_string(),
                    })?;
            dial.push((peer_id(key)?, a));
        }
        let members = Arc::new(RwLock::new(HashMap::new()));
        let (commands, mut command_rx) = mpsc::channel(16);
        let mut control = swarm.behaviour().stream.new_control();
        let mut incoming = control
            .accept(PROTOCOL)
            .map_err(|e| P2pError::Transport(e.to_string()))?;
        let mut inbound_tx = HashMap::new();
        let mut inbound_rx = HashMap::new();
        for (ch, cap) in &settings.channels {
            let (tx, rx) = mpsc::channel(*cap);
            inbound_tx.insert(*ch, tx);
            inbound_rx.insert(*ch, rx);
        }
        let net = Network {
            control,
            writers: Arc::new(Mutex::new(HashMap::new())),
            members: members.clone(),
            connected: Arc::new(RwLock::new(HashSet::new())),
            local,
            commands,
            listen_addrs: Arc::new(RwLock::new(Vec::new())),
        };
        set_members(&mut swarm, &members, &settings.members);

        // Inbound streams: one reader task per stream.
        let inbound_tx = Arc::new(inbound_tx);
        {
            let members = members.clone();
            tokio::spawn(async move {
                while let Some((peer, stream)) = incoming.next().await {
                    let Some(key) = members.read().ok().and_then(|m| m.get(&peer).copied()) else {
                        continue;
                    };
                    tokio::spawn(read_frames(key, stream, inbound_tx.clone()));
                }
            });
        }

        let task = {
            let net = net.clone();
            tokio::spawn(async move {
                let mut redial = tokio::time::interval(Duration::from_millis(1500));
                loop {
                    tokio::select! {
                        _ = redial.tick() => {
                            let connected = net.connected.read().map(|c| c.clone()).unwrap_or_default();
                            for (peer, addr) in &dial {
                                if !connected.contains(peer) {
                                    let _ = swarm.dial(addr.clone());
                                }
                            }
                        }
                        Some(cmd) = command_rx.recv() => match cmd {
                            Command::SetMembers(keys) => set_members(&mut swarm, &net.members, &keys),
                            Command::Block(key) => {
                                if let Ok(p) = peer_id(&key) {
                                    swarm.behaviour_mut().allow.disallow_peer(p);
                                    let _ = swarm.disconnect_peer_id(p);
                                }
                            }
                        },
                        event = swarm.select_next_some() => match event {
                            SwarmEvent::NewListenAddr { address, .. } => {
                                tracing::info!(%address, "p2p listening");
                                if let Ok(mut l) = net.listen_addrs.write() { l.push(address); }
                            }
                            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                                tracing::debug!(%peer_id, "peer connected");
                                if let Ok(mut c) = net.connected.write() { c.insert(peer_id); }
                            }
                            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                                tracing::debug!(%peer_id, "peer disconnected");
                                if let Ok(mut c) = net.connected.write() { c.remove(&peer_id); }
                                if let Ok(mut w) = net.writers.lock() { w.remove(&peer_id); }
                            }
                            SwarmEvent::IncomingConnectionError { error, send_back_addr, .. } => {
                                tracing::debug!(%send_back_addr, %error, "incoming connection refused");
                            }
                            _ => {}
                        },
                    }
                }
            })
        };
        Ok((net, inbound_rx, task))
    }

    /// This node's key.
    pub fn local_key(&self) -> PublicKey {
        self.local
    }

    /// The addresses the swarm listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen_addrs
            .read()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Node keys of connected members.
    pub fn connected(&self) -> Vec<PublicKey> {
        let connected = self.connected.read().map(|c| c.clone()).unwrap_or_default();
        let members = self.members.read().map(|m| m.clone()).unwrap_or_default();
        connected
            .iter()
            .filter_map(|p| members.get(p).copied())
            .collect()
    }

    /// Replaces the set of member keys allowed to connect.
    pub async fn set_members(&self, keys: Vec<PublicKey>) {
        let _ = self.commands.send(Command::SetMembers(keys)).await;
    }

    /// Disconnects a peer and refuses it from now on (until restart).
    pub fn block(&self, key: PublicKey) {
        let _ = self.commands.try_send(Command::Block(key));
    }

    /// Queues a frame to one peer; false if it could not be queued (unknown, unreachable, or its
    /// queue is full). Delivery is best-effort, as the consensus engine expects.
    pub fn send(&self, to: &PublicKey, channel: Channel, payload: Bytes) -> bool {
        if *to == self.local {
            return false;
        }
        let Ok(peer) = peer_id(to) else { return false };
        let is_connected = self.connected.read().is_ok_and(|c| c.contains(&peer));
        if !is_connected {
            return false;
        }
        let Ok(mut writers) = self.writers.lock() else {
            return false;
        };
        let sender = writers.entry(peer).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(WRITER_QUEUE);
            tokio::spawn(write_frames(
                self.control.clone(),
                peer,
                rx,
                self.writers.clone(),
            ));
            tx
        });
        sender.try_send((channel, payload)).is_ok()
    }

    /// Opens a new stream of `protocol` to a connected member.
    pub async fn open_stream(
        &self,
        to: &PublicKey,
        protocol: StreamProtocol,
    ) -> Result<libp2p::Stream, P2pError> {
        let peer = peer_id(to)?;
        self.control
            .clone()
            .open_stream(peer, protocol)
            .await
            .map_err(|e| P2pError::Transport(e.to_string()))
    }

    /// Accepts inbound streams of `protocol`, from members only: `(their node key, stream)`.
    pub fn accept(
        &self,
        protocol: StreamProtocol,
    ) -> Result<mpsc::Receiver<(PublicKey, libp2p::Stream)>, P2pError> {
        let mut incoming = self
            .control
            .clone()
            .accept(protocol)
            .map_err(|e| P2pError::Transport(e.to_string()))?;
        let (tx, rx) = mpsc::channel(64);
        let members = self.members.clone();
        tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                let Some(key) = members.read().ok().and_then(|m| m.get(&peer).copied()) else {
                    continue;
                };
                if tx.send((key, stream)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// Queues a frame to every connected member; returns those it was queued for.
    pub fn broadcast(&self, channel: Channel, payload: Bytes) -> Vec<PublicKey> {
        self.connected()
            .into_iter()
            .filter(|k| self.send(k, channel, payload.clone()))
            .collect()
    }
}

fn set_members(
    swarm: &mut libp2p::Swarm<Behaviour>,
    members: &RwLock<HashMap<PeerId, PublicKey>>,
    keys: &[PublicKey],
) {
    let mut map = HashMap::new();
    for k in keys {
        if let Ok(p) = peer_id(k) {
            map.insert(p, *k);
        }
    }
    if let Ok(mut m) = members.write() {
        for old in m.keys() {
            if !map.contains_key(old) {
                swarm.behaviour_mut().allow.disallow_peer(*old);
                let _ = swarm.disconnect_peer_id(*old);
            }
        }
        for p in map.keys() {
            swarm.behaviour_mut().allow.allow_peer(*p);
        }
        *m = map;
    }
}

async fn write_frames(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    mut rx: mpsc::Receiver<(Channel, Bytes)>,
    writers: Writers,
) {
    let result = async {
        let mut stream = control
            .open_stream(peer, PROTOCOL)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        while let Some((channel, payload)) = rx.recv().await {
            let mut head = [0u8; 8];
            head[..4].copy_from_slice(&channel.to_le_bytes());
            head[4..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            stream.write_all(&head).await?;
            stream.write_all(&payload).await?;
            if rx.is_empty() {
                stream.flush().await?;
            }
        }
        Ok::<_, std::io::Error>(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "stream to peer closed");
    }
    if let Ok(mut w) = writers.lock() {
        // Only remove our own entry (a newer writer may have replaced it).
        if w.get(&peer).is_some_and(|s| s.is_closed()) {
            w.remove(&peer);
        }
    }
}

async fn read_frames(
    from: PublicKey,
    mut stream: libp2p::Stream,
    inbound: Arc<HashMap<Channel, mpsc::Sender<(PublicKey, Bytes)>>>,
) {
    let mut head = [0u8; 8];
    loop {
        if stream.read_exact(&mut head).await.is_err() {
            return;
        }
        let channel = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME {
            tracing::warn!(peer = %from, len, "frame over the limit; closing the stream");
            return;
        }
        let mut buf = vec![0u8; len];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        if let Some(tx) = inbound.get(&channel) {
            if tx.send((from, Bytes::from(buf))).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_protocol::crypto::CryptoSuite;

    fn key(i: u8) -> KeyPair {
        KeyPair::from_seed(CryptoSuite::Ed25519Sha256, [i; 32])
    }

    fn port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    async fn wait_connected(net: &Network, n: usize) {
        for _ in 0..200 {
            if net.connected().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not connected");
    }

    #[tokio::test]
    async fn members_exchange_frames_and_strangers_are_refused() {
        let (a, b, stranger) = (key(1), key(2), key(3));
        let (pa, pb) = (port(), port());
        let members = vec![a.public(), b.public()];
        let settings = |k: &KeyPair, me: u16, other: (PublicKey, u16)| P2pSettings {
            key: k.clone(),
            listen: format!("/ip4/127.0.0.1/tcp/{me}"),
            peers: vec![(other.0, format!("/ip4/127.0.0.1/tcp/{}", other.1))],
            members: members.clone(),
            channels: vec![(7, 16)],
        };
        let (na, mut ra, _ta) = Network::start(settings(&a, pa, (b.public(), pb)))
            .await
            .unwrap();
        let (nb, mut rb, _tb) = Network::start(settings(&b, pb, (a.public(), pa)))
            .await
            .unwrap();
        wait_connected(&na, 1).await;
        wait_connected(&nb, 1).await;
        // The writer opens its stream lazily; retry the first send until it lands.
        let mut got = None;
        for _ in 0..50 {
            assert!(na.send(&b.public(), 7, Bytes::from_static(b"hello")));
            if let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(100), rb.get_mut(&7).unwrap().recv())
                    .await
            {
                got = Some(m);
                break;
            }
        }
        let (from, payload) = got.expect("frame delivered");
        assert_eq!(from, a.public());
        assert_eq!(&payload[..], b"hello");
        assert_eq!(
            nb.broadcast(7, Bytes::from_static(b"back")),
            vec![a.public()]
        );
        let (from, payload) = ra.get_mut(&7).unwrap().recv().await.unwrap();
        assert_eq!((from, &payload[..]), (b.public(), &b"back"[..]));

        // A stranger with a non-member key dials a member: never connected on either side.
        let ps = port();
        let (ns, _rs, _ts) = Network::start(P2pSettings {
            key: stranger.clone(),
            listen: format!("/ip4/127.0.0.1/tcp/{ps}"),
            peers: vec![(a.public(), format!("/ip4/127.0.0.1/tcp/{pa}"))],
            members: vec![a.public(), stranger.public()],
            channels: vec![(7, 16)],
        })
        .await
        .unwrap();
        for _ in 0..30 {
            let _ = ns.send(&a.public(), 7, Bytes::from_static(b"let me in"));
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(!na.connected().contains(&stranger.public()));
        }
        let inbox = ra.get_mut(&7).unwrap();
        while let Ok((from, _)) = inbox.try_recv() {
            assert_ne!(from, stranger.public(), "a stranger's frame was delivered");
        }
    }
}
