(function(){
  var table=document.getElementById('board');
  var heads=table.querySelectorAll('thead tr.cols th');
  function sortBy(col,desc){
    var th=heads[col],numeric=th.dataset.type==='num';
    heads.forEach(function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',desc?'descending':'ascending');
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=a.cells[col].dataset.v,y=b.cells[col].dataset.v;
      if(x===''&&y==='')return 0;if(x==='')return 1;if(y==='')return -1;
      var c=numeric?parseFloat(x)-parseFloat(y):x.localeCompare(y);
      return desc?-c:c;
    });
    rows.forEach(function(r){body.appendChild(r);});
  }
  heads.forEach(function(th,col){
    th.addEventListener('click',function(){
      var current=th.getAttribute('aria-sort');
      sortBy(col,current?current==='ascending':th.dataset.default!=='asc');
    });
  });
  // Deep links: #sort=<column index>[-asc] opens the table sorted (also how the headless check tests sorting).
  var m=/sort=(\d+)(-asc)?/.exec(location.hash);
  if(m&&heads[+m[1]])sortBy(+m[1],!m[2]);
})();
