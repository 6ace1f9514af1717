// Dropzone page: upload files through the page API (request URL → PUT with progress → confirm).
// No framework, no external resources; served from this server (CSP: 'self' only).
(function () {
  'use strict';

  var CONCURRENCY = 3;
  // Files above cfg.multipartAbove go up in parts (S3-style multipart): several parts in flight, a lost part is sent
  // again alone, and after a reload choosing the same file again continues with the parts the server already holds.
  var PART_ATTEMPTS = 5;
  // Headers a browser sets itself and refuses to take from scripts.
  var FORBIDDEN_HEADERS = { 'content-length': 1, host: 1, connection: 1, 'accept-encoding': 1, expect: 1 };

  var cfgEl = document.getElementById('dz-config');
  if (!cfgEl) return;
  var cfg = JSON.parse(cfgEl.textContent);
  // from the server's configuration (uploads.pageMultipartAboveBytes, uploads.pagePartsInFlight); null: never
  var MULTIPART_ABOVE = cfg.multipartAbove == null ? Infinity : cfg.multipartAbove;
  var PARTS_IN_FLIGHT = cfg.partsInFlight || 4;
  var perms = {};
  cfg.permissions.forEach(function (p) { perms[p] = true; });

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    drop: $('drop'), pick: $('pick'), input: $('file-input'), space: $('dz-space'), time: $('dz-time'),
    section: $('uploads-section'), list: $('uploads'), summary: $('summary'), live: $('live'), alert: $('alert'),
    filesSection: $('files-section'), files: $('files'), filesEmpty: $('files-empty')
  };

  var state = {
    usedSpace: cfg.usedSpace,
    maxSize: cfg.maxSize,
    maxFileSize: cfg.maxFileSize,
    deleteTime: cfg.deleteTime,
    clockOffset: cfg.serverTime - Date.now(),
    expired: false,
    sessionOver: false
  };
  var items = [];
  var queue = [];
  var active = 0;
  var seq = 0;

  // ---------- formatting ----------
  function fmtBytes(n) {
    if (n < 1000) return n + ' B';
    var units = ['kB', 'MB', 'GB', 'TB'];
    var v = n, i = -1;
    do { v /= 1000; i++; } while (v >= 1000 && i < units.length - 1);
    return (v >= 100 ? Math.round(v) : v.toFixed(1).replace(/\.0$/, '')) + ' ' + units[i];
  }
  function plural(n, w) { return n + ' ' + w + (n === 1 ? '' : 's'); }
  function fmtDuration(ms) {
    if (ms <= 0) return 'expired';
    var min = Math.floor(ms / 60000);
    if (min < 1) return 'less than a minute';
    if (min < 120) return plural(min, 'minute');
    var h = Math.floor(min / 60);
    if (h < 48) return plural(h, 'hour');
    return plural(Math.round(ms / 86400000), 'day');
  }
  /** Two sizes that must read differently (`1 MB` vs `1 MB` becomes exact byte counts). */
  function fmtPair(a, b) {
    var x = fmtBytes(a), y = fmtBytes(b);
    if (x !== y) return [x, y];
    return [a.toLocaleString('en-US') + ' bytes', b.toLocaleString('en-US') + ' bytes'];
  }
  function tooLarge(size, limit) {
    var p = fmtPair(size, limit);
    return 'Too large: ' + p[0] + ' is over the limit of ' + p[1] + ' per file.';
  }
  function tooFull(size, left) {
    var p = fmtPair(size, left);
    return 'Dropzone full: this file needs ' + p[0] + ' but only ' + p[1] + ' is left.';
  }
  function remaining() { return Math.max(0, state.maxSize - state.usedSpace); }

  // ---------- announcements ----------
  var liveTimer;
  function announce(text) {
    // Re-set the text so repeated messages are read again.
    els.live.textContent = '';
    clearTimeout(liveTimer);
    liveTimer = setTimeout(function () { els.live.textContent = text; }, 50);
  }
  function alertNow(text) {
    els.alert.textContent = '';
    setTimeout(function () { els.alert.textContent = text; }, 50);
  }

  // ---------- facts ----------
  function renderFacts() {
    els.space.textContent = fmtBytes(remaining());
  }
  function tick() {
    var left = state.deleteTime - (Date.now() + state.clockOffset);
    els.time.textContent = fmtDuration(left);
    if (left <= 0 && !state.expired) markExpired();
  }
  function markExpired() {
    state.expired = true;
    els.time.textContent = 'expired';
    els.pick.disabled = true;
    els.drop.classList.add('closed');
    alertNow('This dropzone has expired; uploads are closed.');
  }

  // ---------- API ----------
  function ApiError(status, message, data) {
    this.status = status; this.message = message || ('Request failed (' + status + ').'); this.data = data || {};
  }
  function apiUrl(path) {
    return new URL(encodeURIComponent(cfg.code) + '/api/' + path, location.href).toString();
  }
  function api(method, path, body) {
    var init = {
      method: method,
      headers: { authorization: 'Bearer ' + cfg.token },
      credentials: 'omit',
      cache: 'no-store'
    };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(apiUrl(path), init).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (j) {
        if (!res.ok || !j || j.status !== 'success') throw new ApiError(res.status, j && j.message, j && j.data);
        return j.data;
      });
    }, function () {
      throw { network: true, message: 'Network error: could not reach the server. Check your connection and try again.' };
    });
  }

  /** A clear sentence for a failure, and whether trying again may help. */
  function explain(err, item) {
    if (err && err.network) return { text: err.message, retry: true };
    if (err && err.aborted) return { text: 'Cancelled.', retry: false };
    if (err instanceof ApiError) {
      var d = err.data || {};
      if (err.status === 413 && d.maxFileSize !== undefined)
        return { text: tooLarge(item.file.size, d.maxFileSize) };
      if (err.status === 413 && d.available !== undefined)
        return { text: tooFull(item.file.size, d.available) };
      if (err.status === 410 && /dropzone/i.test(err.message)) { if (!state.expired) markExpired(); return { text: 'This dropzone has expired; uploads are closed.' }; }
      if (err.status === 410) return { text: 'The upload took too long and expired. Try again.', retry: true };
      if (err.status === 401) { state.sessionOver = true; return { text: 'This page has been open too long. Reload the page to continue.' }; }
      if (err.status === 404) return { text: 'This dropzone no longer exists.' };
      if (err.status >= 500) return { text: 'The server had a problem (' + err.status + '). Try again.', retry: true };
      return { text: err.message };
    }
    if (err && err.storage) return { text: err.message, retry: err.retry };
    return { text: (err && err.message) || 'Something went wrong.', retry: true };
  }

  // ---------- upload items ----------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function addFiles(fileList) {
    if (!fileList || !fileList.length) return;
    if (state.sessionOver) { alertNow('This page has been open too long. Reload the page to continue.'); return; }
    els.section.hidden = false;
    var names = [];
    for (var i = 0; i < fileList.length; i++) {
      var item = createItem(fileList[i]);
      items.push(item);
      names.push(item.file.name);
      if (state.expired) fail(item, { text: 'This dropzone has expired; uploads are closed.' });
      else if (item.file.size > state.maxFileSize)
        fail(item, { text: tooLarge(item.file.size, state.maxFileSize) });
      else queue.push(item);
    }
    announce(plural(fileList.length, 'file') + ' added: ' + names.join(', ') + '.');
    pump();
    updateSummary();
  }

  function createItem(file) {
    var id = 'u' + (++seq);
    var item = { id: id, file: file, state: 'queued', loaded: 0, samples: [], xhr: null, fileId: null };
    var li = el('li', 'item');
    li.id = id;
    li.tabIndex = -1;
    li.setAttribute('aria-labelledby', id + '-name');
    var row = el('div', 'item-row');
    var name = el('span', 'item-name', file.name);
    name.id = id + '-name';
    name.title = file.name;
    var st = el('span', 'item-state', 'Waiting');
    st.id = id + '-state';
    var cancel = el('button', 'btn-small', 'Cancel');
    cancel.type = 'button';
    cancel.setAttribute('aria-label', 'Cancel upload of ' + file.name);
    cancel.addEventListener('click', function () { cancelItem(item); });
    row.appendChild(name); row.appendChild(st); row.appendChild(cancel);
    var bar = el('progress');
    bar.max = 100; bar.value = 0;
    bar.id = id + '-bar';
    bar.setAttribute('aria-label', 'Upload progress of ' + file.name);
    var detail = el('p', 'item-detail', '0 B of ' + fmtBytes(file.size) + ' · 0%');
    var msg = el('p', 'item-msg');
    msg.hidden = true;
    li.appendChild(row); li.appendChild(bar); li.appendChild(detail); li.appendChild(msg);
    els.list.appendChild(li);
    item.el = { li: li, state: st, cancel: cancel, bar: bar, detail: detail, msg: msg, row: row };
    setState(item, 'queued', 'Waiting');
    return item;
  }

  function setState(item, s, label) {
    item.state = s;
    item.el.li.setAttribute('data-state', s);
    item.el.state.textContent = label;
    var finished = s === 'done' || s === 'error' || s === 'cancelled';
    if ((finished || s === 'confirming') && item.el.cancel.parentNode) {
      var hadFocus = document.activeElement === item.el.cancel;
      item.el.cancel.remove();
      if (hadFocus) item.el.li.focus();
    }
  }

  function showProgress(item, loaded) {
    var size = item.file.size;
    item.loaded = loaded;
    var pct = size === 0 ? 100 : Math.min(100, Math.floor((loaded / size) * 100));
    item.el.bar.value = pct;
    var now = performance.now();
    item.samples.push([now, loaded]);
    while (item.samples.length > 2 && now - item.samples[0][0] > 3000) item.samples.shift();
    var first = item.samples[0];
    var dt = (now - first[0]) / 1000;
    var speed = dt > 0.2 ? (loaded - first[1]) / dt : 0;
    item.el.detail.textContent = fmtBytes(loaded) + ' of ' + fmtBytes(size) + ' · ' + pct + '%' + (speed > 0 ? ' · ' + fmtBytes(Math.round(speed)) + '/s' : '');
  }

  function fail(item, why) {
    setState(item, 'error', 'Failed');
    if (item.loaded === 0) {
      // nothing was sent: a progress bar at 0% would only add noise
      item.el.bar.hidden = true;
      item.el.detail.textContent = fmtBytes(item.file.size);
    }
    item.el.msg.textContent = why.text;
    item.el.msg.hidden = false;
    if (why.retry && !state.expired && !state.sessionOver) {
      var retry = el('button', 'btn-small', 'Retry');
      retry.type = 'button';
      retry.setAttribute('aria-label', 'Retry upload of ' + item.file.name);
      retry.addEventListener('click', function () {
        var hadFocus = document.activeElement === retry;
        retry.remove();
        item.el.msg.hidden = true;
        item.loaded = 0; item.samples = []; item.fileId = null;
        item.el.bar.value = 0;
        item.el.bar.hidden = false;
        item.el.detail.textContent = '0 B of ' + fmtBytes(item.file.size) + ' · 0%';
        item.el.row.appendChild(item.el.cancel);
        setState(item, 'queued', 'Waiting');
        if (hadFocus) item.el.cancel.focus();
        queue.push(item);
        pump();
        updateSummary();
      });
      item.el.row.appendChild(retry);
    }
    alertNow(item.file.name + ': ' + why.text);
  }

  function cancelItem(item) {
    if (item.state === 'queued') {
      var i = queue.indexOf(item);
      if (i >= 0) queue.splice(i, 1);
      setState(item, 'cancelled', 'Cancelled');
      announce('Upload of ' + item.file.name + ' cancelled.');
      updateSummary();
    } else if (item.state === 'requesting' || item.state === 'uploading') {
      item.cancelRequested = true;
      if (item.xhr) item.xhr.abort();
      if (item.xhrs) item.xhrs.slice().forEach(function (x) { x.abort(); });
    }
  }

  /** Releases the space of a pending upload that will not be confirmed. */
  function discard(item) {
    if (!item.fileId) return;
    var id = item.fileId;
    item.fileId = null;
    api('DELETE', 'uploads/' + encodeURIComponent(id)).then(function (d) {
      state.usedSpace = d.usedSpace; renderFacts();
    }, function () { /* the server releases it when the pending upload expires */ });
  }

  function pump() {
    while (active < CONCURRENCY && queue.length) {
      var item = queue.shift();
      active++;
      run(item).then(finish, finish);
    }
  }
  function finish() {
    active--;
    pump();
    updateSummary();
  }

  function put(item, up) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      item.xhr = xhr;
      xhr.open(up.method || 'PUT', up.signedUrl);
      var headers = up.headers || {};
      Object.keys(headers).forEach(function (k) {
        if (!FORBIDDEN_HEADERS[k.toLowerCase()]) xhr.setRequestHeader(k, headers[k]);
      });
      xhr.upload.onprogress = function (e) { showProgress(item, e.loaded); };
      xhr.onload = function () {
        item.xhr = null;
        if (xhr.status >= 200 && xhr.status < 300) return resolve();
        var text = xhr.responseText || '';
        var code = (/<Code>([^<]*)<\/Code>/.exec(text) || [])[1] || '';
        var message = (/<Message>([^<]*)<\/Message>/.exec(text) || [])[1] || '';
        var expired = /expired/i.test(message) || /expired/i.test(code);
        reject({
          storage: true,
          retry: xhr.status >= 500 || expired,
          message: expired ? 'The upload link expired before the file was sent. Try again.'
            : 'The storage refused the file (' + xhr.status + (code ? ' ' + code : '') + ')' + (message ? ': ' + message : '.')
        });
      };
      xhr.onerror = function () { item.xhr = null; reject({ network: true, message: 'Network error: the connection was lost while sending the file. Try again.' }); };
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = function () { item.xhr = null; reject({ aborted: true }); };
      xhr.send(item.file);
    });
  }

  // ---------- multipart (big files) ----------
  /** Where the page remembers a big file's upload: per dropzone, by name, size and modification time. */
  function resumeKey(file) {
    return 'dz-mp:' + cfg.code + ':' + file.name + ':' + file.size + ':' + file.lastModified;
  }
  function remembered(file) {
    try { return JSON.parse(localStorage.getItem(resumeKey(file)) || 'null'); } catch (e) { return null; }
  }
  function remember(file, fileId) {
    try { localStorage.setItem(resumeKey(file), JSON.stringify({ fileId: fileId })); } catch (e) { /* private mode: no resume after reload */ }
  }
  function forget(file) {
    try { localStorage.removeItem(resumeKey(file)); } catch (e) { /* nothing to forget */ }
  }
  function mpPath(item, rest) {
    return 'uploads/' + encodeURIComponent(item.fileId) + '/multipart' + (rest || '');
  }

  /** PUTs one part (a slice of the file); resolves with its ETag. */
  function putPart(item, signed, blob, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      item.xhrs.push(xhr);
      var done = function () { var i = item.xhrs.indexOf(xhr); if (i >= 0) item.xhrs.splice(i, 1); };
      xhr.open('PUT', signed.url);
      var headers = signed.headers || {};
      Object.keys(headers).forEach(function (k) {
        if (!FORBIDDEN_HEADERS[k.toLowerCase()]) xhr.setRequestHeader(k, headers[k]);
      });
      xhr.upload.onprogress = function (e) { onProgress(e.loaded); };
      xhr.onload = function () {
        done();
        var etag = xhr.getResponseHeader('etag');
        if (xhr.status >= 200 && xhr.status < 300 && etag) return resolve(etag);
        reject({ storage: true, retry: true, status: xhr.status, message: 'The storage refused a part of the file (' + xhr.status + '). Try again.' });
      };
      xhr.onerror = function () { done(); reject({ network: true, message: 'Network error: the connection was lost while sending the file. Try again.' }); };
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = function () { done(); reject({ aborted: true }); };
      xhr.send(blob);
    });
  }

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  /**
   * Reserves the file (or takes up the upload remembered for it), sends the parts the server does not hold yet, a few
   * at a time, each retried alone after a network failure, then completes (which confirms the file).
   */
  function runMultipart(item) {
    var file = item.file;
    var type = /^[\x20-\x7e]*$/.test(file.type) ? file.type : '';
    var saved = remembered(file);
    item.xhrs = [];
    setState(item, 'requesting', 'Starting…');
    var reserve = function () {
      return api('POST', 'uploads', { name: file.name, type: type, size: file.size }).then(function (up) {
        item.fileId = up.fileId;
        state.usedSpace = up.usedSpace; renderFacts();
        remember(file, up.fileId);
        return api('POST', mpPath(item));
      });
    };
    var started = saved && saved.fileId
      ? (item.fileId = saved.fileId, api('POST', mpPath(item)).catch(function (err) {
          if (err && err.network) throw err;
          forget(file); // gone, expired or already uploaded: start over
          item.fileId = null;
          return reserve();
        }))
      : reserve();
    var mp, held = {}, loaded = {};
    var progress = function () {
      var sum = 0;
      Object.keys(loaded).forEach(function (n) { sum += loaded[n]; });
      showProgress(item, Math.min(sum, file.size));
    };
    return started
      .then(function (m) {
        mp = m;
        if (item.cancelRequested) throw { aborted: true };
        return api('GET', mpPath(item, '/' + encodeURIComponent(mp.uploadId)));
      })
      .then(function (listed) {
        listed.parts.forEach(function (p) { held[p.PartNumber] = p.ETag; loaded[p.PartNumber] = p.Size; });
        setState(item, 'uploading', 'Uploading');
        item.samples = [[performance.now(), 0]];
        progress();
        var todo = [];
        for (var n = 1; n <= mp.partCount; n++) if (!held[n]) todo.push(n);
        var stopped = false; // one part failed for good: the others stop too
        var worker = function () {
          if (item.cancelRequested) return Promise.reject({ aborted: true });
          if (stopped) return Promise.resolve();
          var n = todo.shift();
          if (n === undefined) return Promise.resolve();
          var blob = file.slice((n - 1) * mp.partSize, Math.min(n * mp.partSize, file.size));
          var attempt = function (k) {
            return api('POST', mpPath(item, '/' + encodeURIComponent(mp.uploadId) + '/sign'), { partNumbers: [n] })
              .then(function (d) { return putPart(item, d.parts[0], blob, function (b) { loaded[n] = b; progress(); }); })
              .then(function (etag) { held[n] = etag; loaded[n] = blob.size; progress(); }, function (err) {
                loaded[n] = 0;
                var transient = err && (err.network || (err.storage && err.status >= 500) || (err instanceof ApiError && err.status >= 500));
                if (!transient || item.cancelRequested || stopped || k + 1 >= PART_ATTEMPTS) throw err;
                return wait(Math.min(8000, 500 * Math.pow(2, k))).then(function () {
                  if (stopped) throw err;
                  return attempt(k + 1);
                });
              });
          };
          return attempt(0).then(worker);
        };
        var workers = [];
        for (var w = 0; w < PARTS_IN_FLIGHT; w++) workers.push(worker());
        return Promise.all(workers).catch(function (err) {
          stopped = true;
          item.xhrs.slice().forEach(function (x) { x.abort(); });
          throw err;
        });
      })
      .then(function () {
        setState(item, 'confirming', 'Finishing…');
        showProgress(item, file.size);
        var parts = [];
        for (var n = 1; n <= mp.partCount; n++) parts.push({ PartNumber: n, ETag: held[n] });
        return api('POST', mpPath(item, '/' + encodeURIComponent(mp.uploadId) + '/complete'), { parts: parts });
      })
      .then(function (d) {
        forget(file);
        return d;
      }, function (err) {
        // a cancelled upload is discarded; any other failure keeps the parts for Retry or a later visit
        if (err && err.aborted) forget(file);
        else item.keep = true;
        throw err;
      });
  }

  function run(item) {
    var file = item.file;
    // a remembered big upload already holds its space: it resumes
    if (file.size > MULTIPART_ABOVE && remembered(file)) return finishRun(item, runMultipart(item));
    if (file.size > remaining()) {
      fail(item, { text: tooFull(file.size, remaining()) });
      return Promise.resolve();
    }
    if (file.size > MULTIPART_ABOVE) return finishRun(item, runMultipart(item));
    setState(item, 'requesting', 'Starting…');
    var type = /^[\x20-\x7e]*$/.test(file.type) ? file.type : '';
    return finishRun(item, api('POST', 'uploads', { name: file.name, type: type, size: file.size })
      .then(function (up) {
        item.fileId = up.fileId;
        state.usedSpace = up.usedSpace; renderFacts();
        if (item.cancelRequested) throw { aborted: true };
        setState(item, 'uploading', 'Uploading');
        item.samples = [[performance.now(), 0]];
        return put(item, up);
      })
      .then(function () {
        setState(item, 'confirming', 'Finishing…');
        showProgress(item, file.size);
        return api('POST', 'uploads/' + encodeURIComponent(item.fileId) + '/confirm');
      }));
  }

  /** The end state of an uploaded file, with the virus scan's verdict when the server scans (`scan`). */
  function showScanned(item, scan) {
    var name = item.file.name;
    if (scan === 'quarantined') {
      setState(item, 'error', 'Quarantined');
      item.el.msg.hidden = false;
      item.el.msg.textContent = 'A virus was found in this file; it was quarantined and will not be shared.';
      alertNow(name + ' was quarantined: a virus was found.');
    } else if (scan === 'scan_failed') {
      setState(item, 'done', 'Uploaded, not checked');
      item.el.msg.hidden = false;
      item.el.msg.textContent = 'The virus check could not be completed for this file.';
      announce(name + ' uploaded; the virus check could not be completed.');
    } else {
      setState(item, 'done', scan === 'clean' ? 'Uploaded, checked' : 'Uploaded');
      announce(name + ' uploaded.');
    }
    if (perms['dropzone.list']) refreshFiles();
  }

  /** Shows "Checking…" while the server scans the file, asking every 2 s, then its final state. */
  function followScan(item, fileId) {
    setState(item, 'checking', 'Checking…');
    var ask = function () {
      return api('GET', 'uploads/' + encodeURIComponent(fileId)).then(function (d) {
        if (d.file.scanStatus === 'scanning') return new Promise(function (r) { setTimeout(r, 2000); }).then(ask);
        showScanned(item, d.file.scanStatus);
      }, function (err) {
        if (err && err.status === 401) { setState(item, 'done', 'Uploaded'); return; }
        return new Promise(function (r) { setTimeout(r, 5000); }).then(ask);
      });
    };
    return ask();
  }

  /** Shows the end of an upload: done (then `d` has the dropzone's usedSpace), cancelled or failed. */
  function finishRun(item, p) {
    var file = item.file;
    return p
      .then(function (d) {
        state.usedSpace = d.usedSpace; renderFacts();
        item.fileId = null;
        item.el.bar.value = 100;
        item.el.detail.textContent = fmtBytes(file.size) + ' of ' + fmtBytes(file.size) + ' · 100%';
        // (not awaited: the upload slot goes to the next file while the server scans this one)
        if (d.file && d.file.scanStatus === 'scanning') { followScan(item, d.file._id); return; }
        showScanned(item, d.file && d.file.scanStatus);
      })
      .catch(function (err) {
        if (item.fileId && item.state !== 'confirming' && !item.keep) discard(item);
        item.keep = false;
        if (err && err.aborted) {
          setState(item, 'cancelled', 'Cancelled');
          item.el.detail.textContent = 'Cancelled at ' + fmtBytes(item.loaded) + ' of ' + fmtBytes(file.size);
          announce('Upload of ' + file.name + ' cancelled.');
          return;
        }
        fail(item, explain(err, item));
      });
  }

  function updateSummary() {
    var done = [], failed = [], pending = 0, cancelled = 0, bytes = 0;
    items.forEach(function (it) {
      if (it.state === 'done') { done.push(it.file.name); bytes += it.file.size; }
      else if (it.state === 'error') failed.push(it.file.name);
      else if (it.state === 'cancelled') cancelled++;
      else pending++;
    });
    var parts = [];
    if (pending) {
      parts.push(plural(pending, 'file') + ' in progress');
      if (done.length) parts.push(done.length + ' uploaded');
      if (failed.length) parts.push(failed.length + ' failed');
      els.summary.className = 'summary';
      els.summary.textContent = parts.join(' · ');
      return;
    }
    var total = done.length + failed.length;
    var text = total === 0 ? 'Nothing uploaded.' :
      done.length + ' of ' + plural(total, 'file') + ' uploaded (' + fmtBytes(bytes) + ')' +
      (done.length && done.length <= 5 ? ': ' + done.join(', ') : '') + '.' +
      (failed.length ? ' ' + failed.length + ' failed: ' + failed.join(', ') + '.' : '') +
      (cancelled ? ' ' + cancelled + ' cancelled.' : '');
    els.summary.className = failed.length ? 'summary' : 'summary done';
    els.summary.textContent = text;
    if (total) announce(text);
  }

  // ---------- listing (only when the owner allowed it) ----------
  var refreshing = null;
  function refreshFiles() {
    if (refreshing) return refreshing;
    refreshing = api('GET', 'files').then(function (files) {
      refreshing = null;
      els.files.textContent = '';
      els.filesEmpty.hidden = files.length > 0;
      files.forEach(function (f) {
        var li = el('li');
        li.appendChild(el('span', 'fname', f.name));
        li.appendChild(el('span', 'fsize', fmtBytes(f.size)));
        if (f.downloadUrl && perms['dropzone.download']) {
          var a = el('a', '', 'Download');
          a.href = new URL(f.downloadUrl, location.href).toString();
          a.setAttribute('download', f.name);
          a.setAttribute('aria-label', 'Download ' + f.name);
          li.appendChild(a);
        }
        els.files.appendChild(li);
      });
    }, function () { refreshing = null; });
    return refreshing;
  }

  // ---------- wiring ----------
  els.pick.addEventListener('click', function () { els.input.click(); });
  els.input.addEventListener('change', function () {
    var files = Array.prototype.slice.call(els.input.files || []);
    els.input.value = '';
    addFiles(files);
  });

  var depth = 0;
  function hasFiles(e) {
    var t = e.dataTransfer && e.dataTransfer.types;
    return t && Array.prototype.indexOf.call(t, 'Files') >= 0;
  }
  document.addEventListener('dragenter', function (e) {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (++depth === 1 && !state.expired) els.drop.classList.add('over');
  });
  document.addEventListener('dragleave', function (e) {
    if (!hasFiles(e)) return;
    if (--depth <= 0) { depth = 0; els.drop.classList.remove('over'); }
  });
  document.addEventListener('dragover', function (e) {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = state.expired ? 'none' : 'copy';
  });
  document.addEventListener('drop', function (e) {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    els.drop.classList.remove('over');
    if (!state.expired) addFiles(Array.prototype.slice.call(e.dataTransfer.files || []));
  });

  window.addEventListener('beforeunload', function (e) {
    if (active > 0 || queue.length > 0) { e.preventDefault(); e.returnValue = ''; }
  });

  renderFacts();
  tick();
  setInterval(tick, 30000);
  if (!state.expired) els.pick.disabled = false;
  if (perms['dropzone.list']) { els.filesSection.hidden = false; refreshFiles(); }
  document.documentElement.setAttribute('data-ready', 'true');
})();
