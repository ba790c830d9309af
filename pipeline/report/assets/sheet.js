(() => {
  const selects = [...document.querySelectorAll('#filters select')];
  const apply = () => {
    const want = selects.filter(s => s.value !== '').map(s => ['f' + s.dataset.f, s.value]);
    for (const card of document.querySelectorAll('.card')) {
      card.hidden = !want.every(([f, v]) => card.dataset[f] === v);
    }
    for (const group of document.querySelectorAll('.group, section.part')) {
      group.hidden = !group.querySelector('.card:not([hidden])');
    }
  };
  selects.forEach(s => s.addEventListener('change', apply));
  for (const p of document.querySelectorAll('.prompt')) {
    p.addEventListener('click', () => p.classList.toggle('open'));
  }
  // Videos past the first few get their src only when scrolled near, and give it back when far away
  // and paused: a page of 1,000 videos never holds more than a screenful of media players.
  const videos = document.querySelectorAll('video[data-src]');
  if ('IntersectionObserver' in window) {
    const near = new IntersectionObserver(entries => {
      for (const {target: v, isIntersecting} of entries) {
        if (isIntersecting && !v.getAttribute('src')) {
          v.preload = 'metadata';
          v.src = v.dataset.src;
        } else if (!isIntersecting && v.getAttribute('src') && v.paused) {
          v.removeAttribute('src');
          v.preload = 'none';
          v.load();
        }
      }
    }, {rootMargin: '800px 400px'});
    videos.forEach(v => near.observe(v));
  } else {
    videos.forEach(v => { v.src = v.dataset.src; });
  }
})();
