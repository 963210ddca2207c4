/* endpoint_layout.c - the probe behind FABRIC.md Learnt 8: a 64-byte fi_writedata ping-pong between two
 * processes with ONE endpoint per process (shared) or one to send and one to receive (split).
 * usage: endpoint_layout -m shared|split -p PROV [-n iters] [-w warmup] [-o port] [-s size] [server_ip]
 *   no server_ip => server role.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <time.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_errno.h>

#define CK(x) do { int _r = (x); if (_r) { fprintf(stderr, "%s:%d %s = %d (%s)\n", __FILE__, __LINE__, #x, _r, fi_strerror(-_r)); exit(1);} } while (0)
#define NCTX 256
#define NRECV 64

struct epc {
	struct fid_ep *ep;
	struct fid_cq *cq;
	struct fid_av *av;
	fi_addr_t peer;
	char name[256];
	size_t namelen;
	struct fi_context2 rctx[NRECV];
};

static struct fi_info *info;
static struct fid_fabric *fab;
static struct fid_domain *dom;
static struct epc E[2];
static int nep;           /* 1 = shared, 2 = split */
static struct epc *TX, *RX;
static char *sbuf, *rbuf;
static struct fid_mr *smr, *rmr;
static size_t msz = 64;
static uint64_t got_remote, tx_posted, tx_done, last_data, eagains;
static struct fi_context2 wctx[NCTX];
static int rx_cq_data;

struct xchg {
	uint64_t raddr, rkey;
	uint32_t txlen, rxlen;
	char txname[256], rxname[256];
};

static void post_recv(struct epc *e, int i)
{
	int r;
	while ((r = fi_recv(e->ep, NULL, 0, NULL, FI_ADDR_UNSPEC, &e->rctx[i])) == -FI_EAGAIN)
		fi_cq_read(e->cq, NULL, 0);
	CK(r);
}

static void poll_all(void)
{
	struct fi_cq_data_entry ent[16];
	for (int k = 0; k < nep; k++) {
		ssize_t n = fi_cq_read(E[k].cq, ent, 16);
		if (n == -FI_EAGAIN) continue;
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry err = {0};
			fi_cq_readerr(E[k].cq, &err, 0);
			fprintf(stderr, "cq err ep%d: %d %s\n", k, err.err,
				fi_cq_strerror(E[k].cq, err.prov_errno, err.err_data, NULL, 0));
			exit(1);
		}
		if (n < 0) { fprintf(stderr, "cq_read %zd\n", n); exit(1); }
		for (ssize_t i = 0; i < n; i++) {
			if (ent[i].flags & (FI_REMOTE_WRITE | FI_REMOTE_CQ_DATA)) {
				got_remote++;
				last_data = ent[i].data;
				if (rx_cq_data && ent[i].op_context) {
					int idx = (struct fi_context2 *)ent[i].op_context - E[k].rctx;
					if (idx >= 0 && idx < NRECV) post_recv(&E[k], idx);
				}
			} else if (ent[i].flags & (FI_WRITE | FI_RMA)) {
				tx_done++;
			} else {
				fprintf(stderr, "unexpected cqe flags 0x%llx\n", (unsigned long long)ent[i].flags);
			}
		}
	}
}

static uint64_t rraddr, rrkey;

static void do_write(uint64_t data)
{
	ssize_t r;
	while (tx_posted - tx_done >= NCTX - 1) poll_all();
	for (;;) {
		r = fi_writedata(TX->ep, sbuf, msz, fi_mr_desc(smr), data, TX->peer,
				 rraddr, rrkey, &wctx[tx_posted % NCTX]);
		if (r != -FI_EAGAIN) break;
		eagains++;
		poll_all();
	}
	CK((int)r);
	tx_posted++;
}

static void xfull(int fd, void *b, size_t n, int wr)
{
	char *p = b;
	while (n) {
		ssize_t r = wr ? write(fd, p, n) : read(fd, p, n);
		if (r <= 0) { perror("sock"); exit(1); }
		p += r; n -= r;
	}
}

static uint64_t tcp_outsegs(void)
{
	FILE *f = fopen("/proc/net/snmp", "r");
	char hdr[4096], val[4096];
	uint64_t res = 0;
	while (fgets(hdr, sizeof hdr, f)) {
		if (strncmp(hdr, "Tcp:", 4)) continue;
		if (!fgets(val, sizeof val, f)) break;
		char *sh, *sv;
		char *h = strtok_r(hdr, " \n", &sh), *v = strtok_r(val, " \n", &sv);
		while (h && v) {
			if (!strcmp(h, "OutSegs")) res = strtoull(v, NULL, 10);
			h = strtok_r(NULL, " \n", &sh); v = strtok_r(NULL, " \n", &sv);
		}
		break;
	}
	fclose(f);
	return res;
}

static int cmpu(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void reg_mr(char *buf, uint64_t access, struct fid_mr **mr, struct epc *e, uint64_t key)
{
	/* key only matters when the provider did not keep FI_MR_PROV_KEY */
	CK(fi_mr_reg(dom, buf, 4096, access, 0, key, 0, mr, NULL));
	if (info->domain_attr->mr_mode & FI_MR_ENDPOINT) {
		CK(fi_mr_bind(*mr, &e->ep->fid, 0));
		CK(fi_mr_enable(*mr));
	}
}

int main(int argc, char **argv)
{
	const char *mode = "shared", *prov = "tcp;ofi_rxm";
	int iters = 20000, warm = 2000, port = 47700, c, verbose = 0, progmanual = 0;
	while ((c = getopt(argc, argv, "m:p:n:w:o:s:vM")) != -1) {
		switch (c) {
		case 'm': mode = optarg; break;
		case 'p': prov = optarg; break;
		case 'n': iters = atoi(optarg); break;
		case 'w': warm = atoi(optarg); break;
		case 'o': port = atoi(optarg); break;
		case 's': msz = atoi(optarg); break;
		case 'v': verbose = 1; break;
		case 'M': progmanual = 1; break;
		default: fprintf(stderr, "bad arg\n"); return 1;
		}
	}
	const char *srv = optind < argc ? argv[optind] : NULL;
	/* shared2 = control: shared layout, plus a second idle EP whose CQ is also polled */
	nep = (!strcmp(mode, "split") || !strcmp(mode, "shared2")) ? 2 : 1;
	int shared2 = !strcmp(mode, "shared2");

	struct fi_info *hints = fi_allocinfo();
	hints->caps = FI_RMA | FI_WRITE | FI_REMOTE_WRITE;
	hints->ep_attr->type = FI_EP_RDM;
	hints->domain_attr->threading = FI_THREAD_DOMAIN;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
				      FI_MR_PROV_KEY | FI_MR_ENDPOINT;
	if (progmanual) {
		hints->domain_attr->data_progress = FI_PROGRESS_MANUAL;
		hints->domain_attr->control_progress = FI_PROGRESS_MANUAL;
	}
	hints->mode = FI_CONTEXT | FI_CONTEXT2 | FI_RX_CQ_DATA;
	hints->fabric_attr->prov_name = strdup(prov);
	CK(fi_getinfo(FI_VERSION(1, 17), "127.0.0.1", NULL, FI_SOURCE, hints, &info));
	rx_cq_data = !!(info->mode & FI_RX_CQ_DATA);
	if (verbose)
		fprintf(stderr, "prov=%s mode=0x%llx rx_cq_data=%d mr_mode=0x%x data_prog=%d ctrl_prog=%d tx_op_flags=0x%llx caps=0x%llx\n",
			info->fabric_attr->prov_name, (unsigned long long)info->mode, rx_cq_data,
			info->domain_attr->mr_mode, info->domain_attr->data_progress,
			info->domain_attr->control_progress,
			(unsigned long long)info->tx_attr->op_flags, (unsigned long long)info->caps);

	CK(fi_fabric(info->fabric_attr, &fab, NULL));
	CK(fi_domain(fab, info, &dom, NULL));
	for (int k = 0; k < nep; k++) {
		struct fi_cq_attr cqa = { .size = 1024, .format = FI_CQ_FORMAT_DATA, .wait_obj = FI_WAIT_NONE };
		struct fi_av_attr ava = { .type = FI_AV_TABLE };
		CK(fi_endpoint(dom, info, &E[k].ep, NULL));
		CK(fi_cq_open(dom, &cqa, &E[k].cq, NULL));
		CK(fi_av_open(dom, &ava, &E[k].av, NULL));
		CK(fi_ep_bind(E[k].ep, &E[k].cq->fid, FI_TRANSMIT | FI_RECV));
		CK(fi_ep_bind(E[k].ep, &E[k].av->fid, 0));
		CK(fi_enable(E[k].ep));
		E[k].namelen = sizeof E[k].name;
		CK(fi_getname(&E[k].ep->fid, E[k].name, &E[k].namelen));
	}
	TX = &E[0];
	RX = shared2 ? &E[0] : &E[nep - 1];
	sbuf = aligned_alloc(4096, 4096);
	rbuf = aligned_alloc(4096, 4096);
	memset(sbuf, 0xab, 4096); memset(rbuf, 0, 4096);
	reg_mr(sbuf, FI_WRITE, &smr, TX, 1);
	reg_mr(rbuf, FI_REMOTE_WRITE, &rmr, RX, 2);
	if (rx_cq_data)
		for (int i = 0; i < NRECV; i++) post_recv(RX, i);

	/* OOB exchange */
	int fd, one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (!srv) {
		int lfd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(lfd, (void *)&sa, sizeof sa) || listen(lfd, 1)) { perror("bind"); return 1; }
		fd = accept(lfd, NULL, NULL);
		close(lfd);
	} else {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		inet_pton(AF_INET, srv, &sa.sin_addr);
		int tries = 0;
		while (connect(fd, (void *)&sa, sizeof sa)) {
			if (++tries > 200) { perror("connect"); return 1; }
			close(fd); fd = socket(AF_INET, SOCK_STREAM, 0);
			usleep(20000);
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct xchg me = {0}, peer;
	me.raddr = (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) ? (uintptr_t)rbuf : 0;
	me.rkey = fi_mr_key(rmr);
	me.txlen = TX->namelen; memcpy(me.txname, TX->name, TX->namelen);
	me.rxlen = RX->namelen; memcpy(me.rxname, RX->name, RX->namelen);
	xfull(fd, &me, sizeof me, 1);
	xfull(fd, &peer, sizeof peer, 0);
	rraddr = peer.raddr; rrkey = peer.rkey;
	/* TX ep targets the peer's RX ep; in split mode the RX ep also learns the peer's TX ep */
	if (fi_av_insert(TX->av, peer.rxname, 1, &TX->peer, 0, NULL) != 1) { fprintf(stderr, "av_insert\n"); return 1; }
	if (nep == 2 && !shared2 && fi_av_insert(RX->av, peer.txname, 1, &RX->peer, 0, NULL) != 1) { fprintf(stderr, "av_insert2\n"); return 1; }
	char b = 0;
	xfull(fd, &b, 1, 1); xfull(fd, &b, 1, 0);

	int total = warm + iters;
	uint64_t *rtt = calloc(iters, sizeof *rtt);
	uint64_t seg0 = 0, seg1 = 0, eag_warm = 0;
	struct timespec t0, t1;
	if (srv) { /* client */
		for (int i = 0; i < total; i++) {
			if (i == warm) { seg0 = tcp_outsegs(); eag_warm = eagains; }
			clock_gettime(CLOCK_MONOTONIC, &t0);
			do_write(i);
			while (got_remote <= (uint64_t)i) poll_all();
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (last_data != (uint64_t)i) { fprintf(stderr, "data mismatch %llu %d\n", (unsigned long long)last_data, i); return 1; }
			if (i >= warm)
				rtt[i - warm] = (t1.tv_sec - t0.tv_sec) * 1000000000ull + t1.tv_nsec - t0.tv_nsec;
		}
		seg1 = tcp_outsegs();
	} else {
		for (int i = 0; i < total; i++) {
			while (got_remote <= (uint64_t)i) poll_all();
			do_write(i);
		}
	}
	while (tx_done < tx_posted) poll_all();
	/* final sync, keep progressing while waiting so the peer can drain */
	xfull(fd, &b, 1, 1);
	{
		fd_set rs; struct timeval tv;
		for (;;) {
			FD_ZERO(&rs); FD_SET(fd, &rs); tv.tv_sec = 0; tv.tv_usec = 0;
			if (select(fd + 1, &rs, NULL, NULL, &tv) > 0) break;
			poll_all();
		}
		xfull(fd, &b, 1, 0);
	}

	if (srv) {
		qsort(rtt, iters, sizeof *rtt, cmpu);
		double sum = 0;
		int nout = 0;
		for (int i = 0; i < iters; i++) { sum += rtt[i]; if (rtt[i] > 2000000) nout++; }
		printf("RESULT prov=%s mode=%s iters=%d p50_oneway_us=%.2f mean_oneway_us=%.2f p99_oneway_us=%.2f max_oneway_us=%.1f n_rtt_gt1ms=%d segs_per_rt=%.3f eagains_warm=%llu eagains_timed=%llu rx_cq_data=%d\n",
		       prov, mode, iters, rtt[iters / 2] / 2000.0, sum / iters / 2000.0,
		       rtt[(int)(iters * 0.99)] / 2000.0, rtt[iters - 1] / 2000.0, nout, (double)(seg1 - seg0) / iters,
		       (unsigned long long)eag_warm, (unsigned long long)(eagains - eag_warm), rx_cq_data);
	}
	close(fd);
	fi_close(&smr->fid); fi_close(&rmr->fid);
	for (int k = 0; k < nep; k++) {
		fi_close(&E[k].ep->fid); fi_close(&E[k].av->fid); fi_close(&E[k].cq->fid);
	}
	fi_close(&dom->fid); fi_close(&fab->fid);
	fi_freeinfo(info); fi_freeinfo(hints);
	return 0;
}
